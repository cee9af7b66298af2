"""Loading prompt files: every load-time error, with the exact file and path."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import pytest
from test_partials import PERSONA

from promptd.errors import ConfigError
from promptd.prompts.promptset import PromptLoader, scan_packed

GOOD = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [{ role = "user", content = "Hi {{name}}" }]
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    write(tmp_path, files)
    with pytest.raises(ConfigError) as info:
        PromptLoader([tmp_path]).build()
    return [p.replace(str(tmp_path) + "/", "") for p in info.value.problems]


def test_loads_toml_and_json_recursively_skipping_dot_names(tmp_path):
    write(
        tmp_path,
        {
            "a.toml": GOOD,
            "sub/deeper/b.json": '{"versions": [{"version": 1, "messages": [{"role": "user", "content": "x"}]}]}',
            ".hidden.toml": "broken",
            ".git/c.toml": "broken",
            "notes.txt": "ignored",
        },
    )
    prompts = PromptLoader([tmp_path]).build()
    assert sorted(prompts.prompts) == ["a", "b"]
    assert prompts.prompts["b"].source.endswith("sub/deeper/b.json")


def test_duplicate_ids_across_files(tmp_path):
    found = problems(tmp_path, {"a.toml": GOOD, "b.toml": 'id = "a"\n' + GOOD})
    assert found == ['b.toml: id: duplicate prompt id "a" (also defined in a.toml)']


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + GOOD, "versions[1].version: duplicate version 1"),
        ("[environments]\nproduction = 4\n" + GOOD, "environments.production: version 4 does not exist (versions: 1)"),
        (
            GOOD + '[versions.variables]\nname = { type = "date" }\n',
            'versions[0].variables.name.type: unknown type "date" (types: string, number, integer, boolean, object, array, image, file)',
        ),
        (
            GOOD + '[versions.variables]\nname = { type = "integer", default = "x" }\n',
            'versions[0].variables.name.default: default "x" is not a integer',
        ),
        (
            GOOD + '[versions.variables]\nname = { type = "string", enum = ["a", 2] }\n',
            "versions[0].variables.name.enum[1]: enum value 2 is not a string",
        ),
        (
            GOOD + '[versions.variables]\nname = { enum = ["a"], default = "b" }\n',
            "versions[0].variables.name.default: default is not one of the enum values",
        ),
        (GOOD.replace("Hi {{name}}", "{{#items}}x"), 'versions[0].messages[0].content: unclosed section "items"'),
        (
            GOOD.replace("Hi {{name}}", "{{#a}}{{/b}}"),
            'versions[0].messages[0].content: section "a" is closed by "{{/b}}"',
        ),
        (
            GOOD.replace("Hi {{name}}", "{{bad name}}"),
            'versions[0].messages[0].content: bad variable name in "{{bad name}}"',
        ),
        (
            GOOD.replace('content = "Hi {{name}}"', 'content = [{ type = "text", text = "{{#x}}" }]'),
            'versions[0].messages[0].content[0].text: unclosed section "x"',
        ),
        (GOOD.replace('role = "user"', 'role = "robot"'), "versions[0].messages[0].role: Invalid enum value 'robot'"),
        (GOOD.replace("version = 1", "version = 0"), "versions[0].version: Expected `int` >= 1"),
        (GOOD.replace("version = 1", 'version = "1"'), "versions[0].version: Expected `int`, got `str`"),
        (GOOD + 'colour = "red"\n', "versions[0].colour: unknown key"),
        (
            'id = "bad id"\n' + GOOD,
            'id: prompt id "bad id" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit',
        ),
        (
            GOOD + '[versions.params]\nmodel = "x"\n',
            "versions[0].params.model: set model on the version, not in params",
        ),
        ('description = "no versions"\n', "versions: required key is missing"),
        ("versions = [", "not valid TOML"),
    ],
)
def test_file_errors_name_the_file_and_path(tmp_path, text, expected):
    found = problems(tmp_path, {"p.toml": text})
    assert len(found) == 1
    assert found[0].startswith(f"p.toml: {expected}"), found[0]


def test_every_problem_of_every_file_is_reported(tmp_path):
    found = problems(
        tmp_path,
        {
            "a.toml": GOOD.replace("Hi {{name}}", "{{#x}}")
            + GOOD.replace("version = 1", "version = 2").replace("Hi {{name}}", "{{/y}}"),
            "b.json": "{",
        },
    )
    assert found[0] == 'a.toml: versions[0].messages[0].content: unclosed section "x"'
    assert found[1] == 'a.toml: versions[1].messages[0].content: closing tag "{{/y}}" has no open section'
    assert found[2].startswith("b.json: not valid JSON")


def test_unused_declared_variable_is_a_warning(tmp_path):
    write(tmp_path, {"p.toml": GOOD + '[versions.variables]\nname = {}\nextra = { default = "x" }\n'})
    prompts = PromptLoader([tmp_path]).build()
    assert [w.replace(str(tmp_path) + "/", "") for w in prompts.warnings] == [
        'p.toml: versions[0].variables.extra: variable "extra" is declared but no template uses it'
    ]


def test_hashes_follow_content(tmp_path):
    write(tmp_path, {"p.toml": GOOD})
    loader = PromptLoader([tmp_path])
    first = loader.build()
    again = loader.build()
    assert first.hash == again.hash
    assert first.prompts["p"].versions[1].hash == again.prompts["p"].versions[1].hash
    write(tmp_path, {"p.toml": GOOD.replace("Hi", "Hello")})
    changed = loader.build()
    assert changed.hash != first.hash
    assert changed.prompts["p"].versions[1].hash != first.prompts["p"].versions[1].hash


def test_sample_config_is_valid():
    from promptd.settings import load_settings

    settings = load_settings(Path(__file__).parent.parent / "config", environ={})
    prompts = PromptLoader(settings.prompt_dirs).build()
    assert {"customer_support", "order_summary", "translate"} <= set(prompts.prompts)
    assert prompts.warnings == ()


EVERY_KIND = {
    "persona.toml": PERSONA,  # a partial with a defaulted variable
    "agent.toml": """
        aliases = ["helper"]
        [environments]
        production = { 1 = 90, 2 = 10 }
        [[versions]]
        version = 1
        model = "gpt-4o-mini"
        messages = [{ role = "system", content = "{{> persona}} Help with {{topic}}." }]
        params = { temperature = 0.2, metadata = { topic = "{{topic}}", tags = ["{{topic}}", "fixed"] } }
        [[versions]]
        version = 2
        model = "gpt-4o-mini"
        messages = [
          { role = "system", content = "{{#items}}- {{.}}\\n{{/items}}" },
          { role = "user", content = [{ type = "text", text = "{{question}}" }] },
        ]
        params = { max_tokens = 10 }
    """,
    "plain.json": '{"versions": [{"version": 1, "model": "m", "messages": [{"role": "user", "content": "hi"}]}]}',
}


def _cyclic_garbage(build) -> list[str]:
    """What `build()` left that only the cycle collector could free."""
    gc.unfreeze()
    gc.collect()
    build()
    gc.unfreeze()  # the build froze what it made (collector_paused)
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sorted({getattr(o, "__qualname__", type(o).__name__) for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_a_build_leaves_no_reference_cycles(tmp_path):
    """A build runs with the cycle collector paused and freezes what it made, so
    a cycle made while building would never be freed: every reload would leak
    it, and the retired set's memory could not be packed or returned."""
    loader = PromptLoader([write(tmp_path, EVERY_KIND)])
    loader.build()  # first use of the types: msgspec caches what it learns of them
    for round_ in range(2):  # the in-process build, then the builder process's (pickled) one
        for name in EVERY_KIND:
            path = tmp_path / name
            path.write_text(
                path.read_text().replace("model", " model", 1) if name != "plain.json" else path.read_text() + " "
            )
        build = (
            loader.build
            if round_ == 0
            else lambda: loader.assemble_packed(*scan_packed(loader.directories, loader.known()))
        )
        assert _cyclic_garbage(build) == []
