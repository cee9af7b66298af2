"""`promptd promote` and `promptd new-version` on real files: exact contents after
the edit, comments and layout kept byte for byte, the lock respected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import write_config

ROOT = Path(__file__).parent.parent

COMMENTED = """# Support agent: owned by the support team.
id = "support"

[environments]   # which version each environment serves
production = 1   # keep until the canary is done

[[versions]]
version = 1
model = "gpt-4o-mini"   # cheap
messages = [
  { role = "system", content = "You help {{company}}." },  # the persona
]
aliases = ["uuid-1"]
[versions.variables]
company = { default = "Acme" }

# tests follow
[[tests]]
name = "persona"
expect_contains = ["You help Acme."]
"""


def promptd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promptd", *args], capture_output=True, text=True, cwd=ROOT)


def test_new_version_then_promote_keep_the_file_as_written(tmp_path):
    config = write_config(tmp_path, {"support.toml": COMMENTED})
    path = config / "prompts" / "support.toml"
    added = promptd("new-version", "support", str(config))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().startswith("support: added version 2, a copy of version 1")
    promoted = promptd("promote", "support", "production", "2", str(config))
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip().startswith("support: environments.production 1 -> 2")
    assert path.read_text() == COMMENTED.replace("production = 1   #", "production = 2   #").replace(
        'company = { default = "Acme" }\n\n# tests follow',
        'company = { default = "Acme" }\n\n[[versions]]\nversion = 2\nmodel = "gpt-4o-mini"   # cheap\nmessages = [\n'
        '  { role = "system", content = "You help {{company}}." },  # the persona\n]\n[versions.variables]\n'
        'company = { default = "Acme" }\n\n# tests follow',
    )
    assert promptd("test", str(config)).returncode == 0
    assert promptd("validate", str(config)).returncode == 0


def test_json_keeps_its_indentation(tmp_path):
    text = json.dumps(
        {"versions": [{"version": 1, "model": "m", "messages": [{"role": "user", "content": "hi"}]}]}, indent=4
    )
    config = write_config(tmp_path, {"p.json": text + "\n"})
    assert promptd("new-version", "p", str(config)).returncode == 0
    assert promptd("promote", "p", "staging", "2", str(config)).returncode == 0
    new = (config / "prompts" / "p.json").read_text()
    data = json.loads(new)
    assert [v["version"] for v in data["versions"]] == [1, 2] and data["environments"] == {"staging": 2}
    assert new == json.dumps(data, indent=4) + "\n"


def test_edits_that_would_not_load_or_that_the_lock_forbids_are_refused(tmp_path):
    config = write_config(tmp_path, {"support.toml": COMMENTED})
    path = config / "prompts" / "support.toml"
    before = path.read_text()
    missing = promptd("promote", "support", "production", "7", str(config))
    assert missing.returncode == 1 and "has no version 7" in missing.stderr
    assert path.read_text() == before
    assert promptd("lock", str(config)).returncode == 0
    assert promptd("new-version", "support", str(config)).returncode == 0  # adding is fine under a lock
    assert promptd("promote", "support", "production", "2", str(config)).returncode == 0  # environments too
    # a locked version edited by hand: the next edit through the CLI is refused, and nothing is written
    path.write_text(path.read_text().replace("You help {{company}}.", "You assist {{company}}.", 1))
    edited = path.read_text()
    refused = promptd("promote", "support", "staging", "1", str(config))
    assert refused.returncode == 1 and "version 1 changed" in refused.stderr
    assert path.read_text() == edited
