"""`promptd import` (README "Coming from LiteLLM / Helicone / Langfuse / OpenAI"):
realistic files of each format are imported with the real command, then served
by the real app; a request compiled from the imported file must give the
messages the source tool's documented rendering gives (tests/fixtures/import/
expected/FORMAT.json). Untranslatable constructs are reported with file and
line, the rest is still written, and the exit status is 1."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promptd.app import create_app
from promptd.settings import load_settings

FIXTURES = Path(__file__).parent / "fixtures" / "import"


def promptd_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptd", "import", *args], capture_output=True, text=True, timeout=60
    )


def serving(root: Path, prompts: Path) -> Path:
    """A config that serves `prompts` with the echo upstream answering every model."""
    (root / "promptd.toml").write_text(
        textwrap.dedent(
            f"""
            [prompts]
            paths = ["{prompts}"]
            watch = false
            [[upstreams]]
            name = "echo"
            type = "echo"
            models = ["*"]
            """
        )
    )
    return root


@pytest.mark.parametrize("fmt", ["dotprompt", "litellm", "langfuse"])
async def test_imported_prompts_render_as_the_source_tool_does(fmt, tmp_path, gateway_client):
    out = tmp_path / "prompts"
    result = promptd_import(fmt, str(FIXTURES / fmt), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip().endswith("0 problem(s)")

    client = await gateway_client(create_app(load_settings(serving(tmp_path, out), environ={})))
    cases = json.loads((FIXTURES / "expected" / f"{fmt}.json").read_text())["cases"]
    for case in cases:
        body = {
            "prompt_id": case["prompt_id"],
            "prompt_variables": case["variables"],
            "messages": case.get("messages", []),
        }
        if "version" in case:
            body["prompt_version"] = case["version"]
        if "environment" in case:
            body["environment"] = case["environment"]
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status == 200, (case, await response.text())
        answer = await response.json()
        sent = json.loads(answer["choices"][0]["message"]["content"])  # echo: the messages it received
        assert sent == case["expect_messages"], case["prompt_id"]
        if "expect_params" in case:
            preview = {"variables": case["variables"], "messages": case.get("messages", [])}
            preview.update({k: case[k] for k in ("version", "environment") if k in case})
            rendered = await (await client.post(f"/v1/prompts/{case['prompt_id']}/render", json=preview)).json()
            params = {k: v for k, v in rendered["body"].items() if k not in ("model", "messages")}
            assert params == case["expect_params"], case["prompt_id"]


def test_dotprompt_file_contents(tmp_path):
    out = tmp_path / "prompts"
    assert promptd_import("dotprompt", str(FIXTURES / "dotprompt"), "--out", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "describe_photo.toml",
        "greeting.toml",
        "signature.toml",  # the partial _signature.prompt, as a prompt of its own
        "support_agent.toml",
        "tutor.toml",
    ]
    support = (out / "support_agent.toml").read_text()
    assert support.startswith("# Imported by `promptd import dotprompt` from ")
    # Declared from the Picoschema: types, enum, description, optional, default.
    assert (
        'tier = { type = "string", enum = ["gold", "silver", "bronze"], description = "loyalty tier", default = "bronze" }'
        in support
    )
    assert 'vip = { type = "boolean", required = false }' in support
    assert 'model = "googleai/gemini-2.0-flash"' in support
    photo = (out / "describe_photo.toml").read_text()
    assert 'photo = { type = "image", description = "an image URL" }' in photo
    assert "{{> signature}}" in (out / "greeting.toml").read_text()
    assert 'placeholder = "history"' in (out / "tutor.toml").read_text()


def test_litellm_versions_come_from_file_names(tmp_path):
    out = tmp_path / "prompts"
    result = promptd_import("litellm", str(FIXTURES / "litellm"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "support, versions 1, 2" in result.stdout
    # A single file works too: one prompt.
    single = promptd_import("litellm", str(FIXTURES / "litellm" / "summarize.prompt"), "--out", str(tmp_path / "one"))
    assert single.returncode == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["summarize.toml"]


def test_langfuse_labels_become_environments(tmp_path):
    out = tmp_path / "prompts"
    result = promptd_import("langfuse", str(FIXTURES / "langfuse" / "export.json"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "movie-critic, versions 1, 2 (staging=1, production=2)" in result.stdout
    text = (out / "movie-critic.toml").read_text()
    assert "[environments]\nstaging = 1\nproduction = 2\n" in text
    assert "latest" not in text  # promptd's own default without an environment


def _line(path: Path, needle: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("fmt", "source", "expected"),
    [
        (
            "dotprompt",
            "dotprompt_unsupported/listing.prompt",
            [
                ("tools:", 'front matter "tools"'),
                ("topK:", 'config "topK" has no OpenAI equivalent'),
                ("{{@index}}", "{{@index}}: data variables"),
                ("{{uppercase name}}", "{{uppercase name}}: custom helpers"),
                ("ifEquals", '{{#ifEquals name "x"}}: block helper "ifEquals"'),
            ],
        ),
        (
            "litellm",
            "litellm_unsupported/answer.prompt",
            [
                ("output:", "output: LiteLLM does not send it"),
                ("| upper", "{{ language | upper }}: Jinja filters"),
                ("score > 5", "{% if score > 5 %}: only `if name`"),
                ("{% set", '{% set greeting = "hi" %}: the Jinja statement "set"'),
            ],
        ),
        (
            "langfuse",
            "langfuse_unsupported/export.json",
            [
                ('"examples"', 'prompt[2]: a second placeholder ("examples")'),
                ("supported_languages", 'config "supported_languages" is not an OpenAI parameter'),
                ("{", '"support/triage" is not a promptd id'),
            ],
        ),
    ],
)
def test_untranslatable_constructs_are_reported_with_file_and_line(fmt, source, expected, tmp_path):
    path = FIXTURES / source
    out = tmp_path / "prompts"
    result = promptd_import(fmt, str(path), "--out", str(out))
    assert result.returncode == 1
    reported = result.stderr.splitlines()
    assert (
        reported[-1]
        == f"1 prompt file(s) written, {len(expected)} problem(s): see above; the constructs listed were not translated"
    )
    for (needle, message), line in zip(expected, reported, strict=False):
        assert line.startswith(f"{path}:{_line(path, needle)}: {message}"), (line, needle)
    assert len(reported) == len(expected) + 1
    # What translates is still written, and promptd loads it.
    written = list(out.iterdir())
    assert len(written) == 1
    check = subprocess.run(
        [sys.executable, "-m", "promptd", "validate", str(serving(tmp_path, out))], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_a_result_promptd_rejects_is_not_written(tmp_path):
    """Written only after the whole output directory loads: here the id collides
    with a prompt already there, so nothing of it takes effect."""
    out = tmp_path / "prompts"
    out.mkdir()
    existing = out / "critic.toml"
    existing.write_text(
        'id = "movie-critic"\n[[versions]]\nversion = 1\nmessages = [{ role = "user", content = "x" }]\n'
    )
    result = promptd_import("langfuse", str(FIXTURES / "langfuse" / "export.json"), "--out", str(out))
    assert result.returncode == 1
    assert "promptd rejects the result, so it is not written" in result.stderr
    assert "movie-critic" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["critic.toml", "movie-critic-chat.toml"]
    assert existing.read_text().startswith('id = "movie-critic"')


def test_reimporting_replaces_the_files_with_the_same_result(tmp_path):
    out = tmp_path / "prompts"
    assert promptd_import("litellm", str(FIXTURES / "litellm"), "--out", str(out)).returncode == 0
    first = {p.name: p.read_text() for p in out.iterdir()}
    assert promptd_import("litellm", str(FIXTURES / "litellm"), "--out", str(out)).returncode == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["yaml", "x"], "promptd import: argument FORMAT: invalid choice: 'yaml'"),
        (["litellm", "/nonexistent/dir"], "/nonexistent/dir: no such file or directory"),
        (["langfuse", str(FIXTURES / "litellm")], "no *.json files to import"),
    ],
)
def test_usage_errors_are_one_line(args, message):
    result = promptd_import(*args)
    assert result.returncode in (1, 2)
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_broken_front_matter_is_reported_and_nothing_is_written(tmp_path):
    source = tmp_path / "bad.prompt"
    source.write_text("---\nmodel: [unclosed\n---\nHello {{name}}\n")
    out = tmp_path / "prompts"
    result = promptd_import("dotprompt", str(source), "--out", str(out))
    assert result.returncode == 1
    assert f"{source}:" in result.stderr and "front matter is not valid YAML" in result.stderr
    assert not out.exists() or not list(out.iterdir())
