"""The CLI as a user runs it: a subprocess, its output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NOMODEL, SUPPORT, write_config

ROOT = Path(__file__).parent.parent


def promptd(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promptd", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_validate_sample_config():
    result = promptd("validate", "config")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 3 prompts")


def test_validate_default_config_dir():
    assert promptd("validate").returncode == 0


def test_validate_prints_every_problem_and_exits_1(tmp_path):
    config = write_config(tmp_path, {"a.toml": SUPPORT.replace("{{company}}.", "{{#company}}."), "b.json": "{"})
    result = promptd("validate", str(config))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f'{config}/prompts/a.toml: versions[1].messages[0].content: unclosed section "company"'
    assert lines[1].startswith(f"{config}/prompts/b.json: not valid JSON")
    assert lines[-1] == "2 problems found"
    assert "Traceback" not in result.stderr


def test_render_prints_the_upstream_body(tmp_path):
    config = write_config(tmp_path, {"support.toml": SUPPORT, "nomodel.toml": NOMODEL})
    result = promptd("render", "support", str(config), "--var", "name=Sam", "--var", "issue=technical")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You help customers of Acme."},
            {"role": "user", "content": "I am Sam and my issue is technical."},
        ],
        "temperature": 0.2,
        "max_tokens": 512,
    }
    staged = promptd("render", "support", str(config), "--environment", "staging", "--vars-json", '{"company": "Z"}')
    assert json.loads(staged.stdout)["messages"] == [{"role": "system", "content": "v3 Z"}]
    pinned = promptd("render", "support@1", str(config))
    assert json.loads(pinned.stdout)["messages"][0]["content"] == "v1 for Acme"
    nomodel = promptd("render", "nomodel", str(config), "--model", "gpt-4.1")
    assert json.loads(nomodel.stdout)["model"] == "gpt-4.1"


def test_render_typed_vars_from_the_sample_config():
    result = promptd(
        "render",
        "order_summary",
        "config",
        "--var",
        "order_id=7",
        "--var",
        "customer=Al",
        "--var",
        'items=[{"name": "pen", "quantity": 1, "price": 2}]',
        "--var",
        "total=2",
        "--var",
        "item_count=1",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Order 7 for Al (1 items):\n- 1 x pen at 2\nTotal: 2 EUR" in json.loads(result.stdout)["messages"][1]["content"]
    )


def test_render_errors_are_one_readable_line(tmp_path):
    config = write_config(tmp_path)
    for args, expected in [
        (("render", "nope", str(config)), 'promptd: no prompt "nope"'),
        (("render", "support", str(config), "--version", "9"), 'promptd: --version: prompt "support" has no version 9'),
        (
            ("render", "support", str(config)),
            "promptd: --var issue: missing (expected string); --var name: missing (expected any)",
        ),
        (
            ("render", "support", str(config), "--var", "issue=other", "--var", "name=x"),
            "promptd: --var issue: not in enum",
        ),
        (("render", "support", str(config), "--vars-json", "[1"), "promptd: --vars-json is not valid JSON"),
        (
            ("render", "support", str(config), "--environment", "nope"),
            'promptd: --environment: prompt "support" has no environment "nope"',
        ),
        (("render", "support@", str(config)), "promptd: PROMPT_ID 'support@' must look like"),
    ]:
        result = promptd(*args)
        assert result.returncode == 1
        assert result.stderr.startswith(expected), result.stderr
        assert "Traceback" not in result.stderr


def test_serve_with_a_broken_prompt_exits_2_with_one_line_per_problem(tmp_path):
    config = write_config(tmp_path, {"a.toml": SUPPORT.replace("{{company}}.", "{{/company}}.")})
    result = promptd("serve", str(config))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f'{config}/prompts/a.toml: versions[1].messages[0].content: closing tag "{{{{/company}}}}" has no open section'
    )


def test_render_is_a_preview_without_a_model(tmp_path):
    config = write_config(tmp_path)
    result = promptd("render", "nomodel", str(config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"messages": [{"role": "system", "content": "Translate to French."}]}
    assert "version 1 (no environment: latest or pinned)" in result.stderr
    assert "neither the version nor --model sets a model" in result.stderr
    staged = promptd("render", "support@staging", str(config))
    assert "support version 3 (environment staging)" in staged.stderr and "upstream mock" in staged.stderr


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--port", "70000"), "promptd: --port: Expected `int` <= 65535"),
        (("--port", "-1"), "promptd: --port: Expected `int` >= 0"),
        (("--workers", "0"), "promptd: --workers: Expected `int` >= 1"),
        (("--port", "abc"), "promptd serve: argument --port: invalid int value: 'abc'"),
        (("--log-level", "loud"), "promptd serve: argument --log-level: invalid choice: 'loud'"),
    ],
)
def test_serve_flags_are_checked_by_the_config_rules(tmp_path, flags, expected):
    config = write_config(tmp_path)
    result = promptd("serve", str(config), *flags)
    assert result.returncode == 2
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "usage:" not in result.stderr


def test_validate_rejects_a_base_url_without_a_host(tmp_path):
    config = write_config(tmp_path, upstream_url="https://")
    result = promptd("validate", str(config))
    assert result.returncode == 1
    assert 'upstreams[0].base_url: "https://" has no host' in result.stderr


def test_validate_prints_every_problem_at_once_with_did_you_mean(tmp_path):
    config = write_config(
        tmp_path,
        {
            "a.toml": SUPPORT,
            "b.toml": SUPPORT.replace('id = "support"', 'id = "b"').replace("{{company}}.", "{{#company}}."),
        },
    )
    text = (config / "promptd.toml").read_text()
    text = text.replace("[server]", "[server]\nprot = 8080\nworkers = 0\n[promts]\nwatch = true\n", 1)
    text = text.replace('models = ["echo"]', 'modles = ["echo"]')
    (config / "promptd.toml").write_text(text)
    result = promptd("validate", str(config))
    assert result.returncode == 1
    lines = [line.split("promptd.toml: ", 1)[-1] for line in result.stderr.splitlines()]
    assert 'server.prot: unknown key (did you mean "port"?)' in lines
    assert "server.workers: Expected `int` >= 1" in lines
    assert 'promts: unknown key (did you mean "prompts"?)' in lines
    assert 'upstreams[1].modles: unknown key (did you mean "models"?)' in lines
    assert any(line.endswith('b.toml: versions[1].messages[0].content: unclosed section "company"') for line in lines)
    assert lines[-1] == "5 problems found"


def test_validate_shows_every_problem_inside_one_file(tmp_path):
    bad = (
        'descripton = "typo"\n[[versions]]\nversion = "1"\nmessages = [{ role = "robot", content = "hi" }]\n'
        '[versions.variables]\nx = { tpye = "string" }\n'
    )
    config = write_config(tmp_path, {"bad.toml": bad})
    result = promptd("validate", str(config))
    lines = [line.split("bad.toml: ", 1)[-1] for line in result.stderr.splitlines()]
    assert lines[:4] == [
        'descripton: unknown key (did you mean "description"?)',
        "versions[0].version: Expected `int`, got `str`",
        "versions[0].messages[0].role: Invalid enum value 'robot'",
        'versions[0].variables.x.tpye: unknown key (did you mean "type"?)',
    ]
