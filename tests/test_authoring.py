"""`promptd list | show | diff` through the console entry point, on real files, with no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import NOMODEL, SUPPORT, write_config

ROOT = Path(__file__).parent.parent


def promptd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promptd", *args], capture_output=True, text=True, cwd=ROOT)


def test_list_text_and_json(tmp_path):
    config = write_config(tmp_path, {"support.toml": SUPPORT, "nomodel.toml": NOMODEL})
    text = promptd("list", str(config))
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].startswith("nomodel  v1 (1 versions)  model=-")
    assert "support  v3 (3 versions)  model=gpt-4o-mini  [production=2, staging=3]" in text.stdout
    entries = json.loads(promptd("list", str(config), "--json").stdout)
    support = next(entry for entry in entries if entry["id"] == "support")
    assert support["versions"] == [1, 2, 3] and support["latest"] == 3 and support["model"] == "gpt-4o-mini"
    assert support["variables"] == ["company", "issue", "name"]
    assert support["file"].endswith("prompts/support.toml")


def test_show_is_the_version_as_written(tmp_path):
    config = write_config(tmp_path)
    default = json.loads(promptd("show", "support", str(config), "--json").stdout)
    assert default["version"] == 2  # production
    assert default["messages"][1]["content"] == "I am {{name}} and my issue is {{issue}}."  # unrendered
    assert default["params"] == {"temperature": 0.2, "max_tokens": 512}
    staged = promptd("show", "support@staging", str(config))
    assert staged.returncode == 0
    assert staged.stdout.startswith("support version 3 (environment staging)")
    assert json.loads(promptd("show", "support@1", str(config), "--json").stdout)["version"] == 1


def test_diff_is_a_unified_diff_and_exits_0(tmp_path):
    config = write_config(tmp_path)
    result = promptd("diff", "support", "1", "staging", str(config))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "--- support@1 (version 1)" and lines[1] == "+++ support@staging (version 3)"
    assert '-      "content": "v1 for {{company}}",' in lines
    assert '+      "content": "v3 {{company}}",' in lines
    assert '-  "model": "gpt-4o-mini",' in lines and '+  "model": "gpt-4o",' in lines
    same = promptd("diff", "support", "2", "production", str(config))
    assert same.returncode == 0 and same.stdout == ""


def test_errors_are_one_line(tmp_path):
    config = write_config(tmp_path)
    for args, expected in [
        (("show", "nope", str(config)), 'promptd: no prompt "nope"'),
        (("show", "support@9", str(config)), 'promptd: prompt "support" has no version 9'),
        (("diff", "support", "1", "qa", str(config)), 'promptd: prompt "support" has no environment "qa"'),
        (("show", "support@", str(config)), "promptd: 'support@' must look like"),
    ]:
        result = promptd(*args)
        assert result.returncode == 1 and result.stderr.startswith(expected), result.stderr
        assert result.stderr.count("\n") == 1


TESTED = (
    SUPPORT
    + """
[[tests]]
name = "production greets"
variables = { name = "Sam", issue = "billing" }
expect_contains = ["I am Sam and my issue is billing."]

[[tests]]
name = "v1 exactly"
version = 1
messages = [{ role = "user", content = "hi" }]
expect_messages = [{ role = "system", content = "v1 for Acme" }, { role = "user", content = "hi" }]

[[tests]]
name = "a wrong expectation"
variables = { name = "Sam", issue = "billing" }
expect_contains = ["not there"]

[[tests]]
name = "enum miss"
variables = { name = "Sam", issue = "refund" }
expect_error = "invalid_variables"
"""
)


def test_test_runs_every_test_and_shows_what_failed(tmp_path):
    config = write_config(tmp_path, {"support.toml": TESTED})
    result = promptd("test", str(config))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "PASS support: production greets"
    assert lines[1] == "PASS support: v1 exactly"
    assert lines[2].startswith(
        'FAIL support: a wrong expectation: expected the rendered messages to contain ["not there"], rendered ['
    )
    assert lines[3] == "PASS support: enum miss"
    assert lines[-1] == "3 passed, 1 failed"
    only = promptd("test", str(config), "nope")
    assert only.returncode == 1 and only.stdout.splitlines()[-1] == "0 passed, 1 failed"


def test_validate_checks_that_tests_are_well_formed(tmp_path):
    bad = SUPPORT + '\n[[tests]]\nname = "x"\nversion = 9\n\n[[tests]]\nname = "y"\nexpect_error = "nope"\n'
    config = write_config(tmp_path, {"support.toml": bad})
    result = promptd("validate", str(config))
    assert result.returncode == 1
    assert 'tests[0]: test "x" needs expect_contains, expect_messages or expect_error' in result.stderr
    assert "tests[0].version: version 9 does not exist (versions: 1, 2, 3)" in result.stderr
    assert 'tests[1].expect_error: "nope" is not an error code of promptd' in result.stderr


def test_tests_never_affect_serving(tmp_path):
    config = write_config(tmp_path, {"support.toml": TESTED})
    rendered = promptd("render", "support", str(config), "--var", "name=A", "--var", "issue=billing")
    assert rendered.returncode == 0 and "expect" not in rendered.stdout
