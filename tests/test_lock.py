"""prompts.lock: `promptd lock`, `lock --check`, validate, and a running server
with the real watcher refusing an in-place change of a locked version."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from conftest import SUPPORT, write_config

ROOT = Path(__file__).parent.parent


def promptd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promptd", *args], capture_output=True, text=True, cwd=ROOT)


def test_lock_check_and_validate(tmp_path):
    config = write_config(tmp_path)
    assert promptd("lock", str(config), "--check").returncode == 1  # no lock yet
    written = promptd("lock", str(config))
    assert written.returncode == 0 and "wrote" in written.stdout
    locked = json.loads((config / "prompts.lock").read_text())["prompts"]
    assert set(locked["support"]) == {"1", "2", "3"}
    assert promptd("lock", str(config), "--check").returncode == 0
    # promoting (environments) and adding versions are allowed under a lock
    path = config / "prompts" / "support.toml"
    path.write_text(path.read_text().replace("production = 2", "production = 3"))
    assert promptd("validate", str(config)).returncode == 0
    # changing a published version is not
    path.write_text(path.read_text().replace("v1 for {{company}}", "v1, edited, for {{company}}"))
    check = promptd("lock", str(config), "--check")
    assert check.returncode == 1
    assert 'prompt "support" version 1 changed' in check.stderr and "add a new version instead" in check.stderr
    validate = promptd("validate", str(config))
    assert validate.returncode == 1 and 'prompt "support" version 1 changed' in validate.stderr
    serve = promptd("serve", str(config), "--port", "0")
    assert serve.returncode == 2 and 'prompt "support" version 1 changed' in serve.stderr


async def test_a_running_server_refuses_an_in_place_change(make_gateway, tmp_path):
    client = await make_gateway(prompts={"support.toml": SUPPORT}, watch=True)
    config = client.config_dir
    assert promptd("lock", str(config)).returncode == 0
    await asyncio.sleep(0.3)
    path = config / "prompts" / "support.toml"
    path.write_text(path.read_text().replace("v3 {{company}}", "v3 edited {{company}}"))
    for _ in range(100):
        ready = await (await client.get("/readyz")).json()
        if ready["last_reload_error"]:
            break
        await asyncio.sleep(0.05)
    assert any('prompt "support" version 3 changed' in line for line in ready["last_reload_error"])
    assert ready["generation"] == 1
    rendered = await (await client.post("/v1/prompts/support/render", json={"version": 3})).json()
    assert rendered["body"]["messages"][0]["content"] == "v3 Acme"  # the last good set keeps serving
    # a new version is fine
    path.write_text(
        SUPPORT + '\n[[versions]]\nversion = 4\nmodel = "gpt-4o"\nmessages = [{ role = "system", content = "v4" }]\n'
    )
    for _ in range(100):
        ready = await (await client.get("/readyz")).json()
        if ready["generation"] == 2:
            break
        await asyncio.sleep(0.05)
    assert ready["generation"] == 2 and ready["last_reload_error"] is None


async def test_without_a_lock_an_in_place_change_is_a_warning(make_gateway, caplog):
    client = await make_gateway(prompts={"support.toml": SUPPORT}, watch=True)
    await asyncio.sleep(0.3)
    path = client.config_dir / "prompts" / "support.toml"
    path.write_text(path.read_text().replace("v3 {{company}}", "v3 edited {{company}}"))
    for _ in range(100):
        if (await (await client.get("/readyz")).json())["generation"] == 2:
            break
        await asyncio.sleep(0.05)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any('prompt "support" version 3 changed in place' in w for w in warnings), warnings
