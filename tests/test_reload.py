"""Hot reload with a real directory and the real watcher (no mocked events)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
from conftest import LogSink

PROMPT = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [{{ role = "system", content = "{text}" }}]
"""


def prompt(text: str) -> str:
    return PROMPT.format(text=text)


async def served(client, prompt_id: str = "p") -> str | None:
    response = await client.post(f"/v1/prompts/{prompt_id}/render", data=b"{}")
    if response.status != 200:
        return None
    return (await response.json())["body"]["messages"][0]["content"]


async def wait_until(check, timeout: float = 3.0) -> float:
    """Poll an async check until it is true; return the seconds it took."""
    started = time.perf_counter()
    while True:
        if await check():
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def watched(make_gateway, text: str):
    """promptd watching one prompt file `p.toml`; returns the client and the file."""
    client = await make_gateway(prompts={"p.toml": prompt(text)}, watch=True)
    await asyncio.sleep(0.2)  # let the watcher start
    return client, client.config_dir / "prompts" / "p.toml"


async def readyz(client) -> dict:
    return await (await client.get("/readyz")).json()


async def test_edit_is_served_within_half_a_second(make_gateway):
    client = await make_gateway(prompts={"p.toml": prompt("one")}, watch=True)
    path = client.config_dir / "prompts" / "p.toml"
    assert await served(client) == "one"
    await asyncio.sleep(0.2)  # let the watcher start
    path.write_text(prompt("two"))
    took = await wait_until(lambda: _equals(client, "two"))
    assert took < 0.5
    assert (await readyz(client))["generation"] == 2


async def _equals(client, text: str, prompt_id: str = "p") -> bool:
    return await served(client, prompt_id) == text


async def test_add_delete_rename(make_gateway):
    client = await make_gateway(prompts={"p.toml": prompt("one")}, watch=True)
    prompts = client.config_dir / "prompts"
    await asyncio.sleep(0.2)
    (prompts / "sub").mkdir()
    (prompts / "sub" / "q.json").write_bytes(
        orjson.dumps(
            {"versions": [{"version": 1, "model": "gpt-4o-mini", "messages": [{"role": "system", "content": "cue"}]}]}
        )
    )
    await wait_until(lambda: _equals(client, "cue", "q"))
    (prompts / "p.toml").rename(prompts / "renamed.toml")
    await wait_until(lambda: _equals(client, "one", "renamed"))
    assert await served(client, "p") is None
    (prompts / "sub" / "q.json").unlink()
    await wait_until(lambda: _missing(client, "q"))


async def _missing(client, prompt_id: str) -> bool:
    return await served(client, prompt_id) is None


async def test_broken_edit_keeps_last_good_set_until_fixed(make_gateway):
    client, path = await watched(make_gateway, "one")
    path.write_text(prompt("{{#unclosed}}"))

    async def failed() -> bool:
        return (await readyz(client))["last_reload_error"] is not None

    await wait_until(failed)
    state = await readyz(client)
    assert state["generation"] == 1
    assert state["last_reload_error"] == [f'{path}: versions[0].messages[0].content: unclosed section "unclosed"']
    assert await served(client) == "one"  # the last good set keeps serving
    metrics = await (await client.get("/metrics")).text()
    assert 'promptd_config_reloads_total{result="failure"} 1.0' in metrics
    path.write_text(prompt("fixed"))
    await wait_until(lambda: _equals(client, "fixed"))
    state = await readyz(client)
    assert state["last_reload_error"] is None and state["generation"] == 2


async def test_temp_file_and_rename_editors(make_gateway):
    client = await make_gateway(prompts={"p.toml": prompt("one")}, watch=True)
    prompts = client.config_dir / "prompts"
    await asyncio.sleep(0.2)
    swap = prompts / ".p.toml.swp"
    swap.write_text(prompt("via rename"))
    os.replace(swap, prompts / "p.toml")
    await wait_until(lambda: _equals(client, "via rename"))
    # truncate, then write a moment later: the empty file must never take effect or be reported
    with open(prompts / "p.toml", "w") as f:
        f.flush()
        await asyncio.sleep(0.06)
        f.write(prompt("after truncate"))
    await wait_until(lambda: _equals(client, "after truncate"))
    assert (await readyz(client))["last_reload_error"] is None


async def test_same_content_does_not_bump_the_generation(make_gateway):
    client, path = await watched(make_gateway, "one")
    path.write_text(prompt("one"))

    async def reloaded() -> bool:
        return 'promptd_config_reloads_total{result="success"}' in await (await client.get("/metrics")).text()

    await wait_until(reloaded)
    assert (await readyz(client))["generation"] == 1


def _configmap_generation(prompts: Path, name: str, text: str) -> None:
    """What the kubelet does: write a new timestamped dir, then swap `..data` to it atomically."""
    target = prompts / name
    target.mkdir()
    (target / "p.toml").write_text(prompt(text))
    tmp_link = prompts / "..data_tmp"
    tmp_link.symlink_to(name)
    os.replace(tmp_link, prompts / "..data")


async def test_configmap_symlink_swap(make_gateway, tmp_path):
    client = await make_gateway(prompts={}, watch=True)
    prompts = client.config_dir / "prompts"
    _configmap_generation(prompts, "..2026_11_23_00_00_00.1", "first")
    (prompts / "p.toml").symlink_to("..data/p.toml")
    await wait_until(lambda: _equals(client, "first"))
    _configmap_generation(prompts, "..2026_11_23_00_01_00.2", "second")
    took = await wait_until(lambda: _equals(client, "second"))
    assert took < 0.5
    listing = await (await client.get("/v1/prompts")).json()
    assert [p["id"] for p in listing["data"]] == ["p"]  # nothing loaded twice through ..data


async def test_in_flight_stream_finishes_on_the_old_version(make_gateway, upstream):
    client, path = await watched(make_gateway, "old")
    upstream.behaviour = "gated_stream"
    first = await client.post("/v1/chat/completions", json={"prompt_id": "p", "stream": True})
    old_hash = first.headers["x-promptd-prompt-hash"]
    await first.content.readuntil(b"\n\n")
    path.write_text(prompt("new"))
    await wait_until(lambda: _equals(client, "new"))
    upstream.behaviour = "ok"
    second = await client.post("/v1/chat/completions", json={"prompt_id": "p"})
    assert second.status == 200 and second.headers["x-promptd-prompt-hash"] != old_hash
    upstream.gate.set()
    rest = await first.content.read()
    assert rest.endswith(b"data: [DONE]\n\n")
    assert upstream.requests[0]["body"]["messages"][0]["content"] == "old"
    assert upstream.requests[1]["body"]["messages"][0]["content"] == "new"


async def test_two_hundred_rapid_edits_end_consistent(make_gateway):
    files = {f"p{i}.toml": prompt("start") for i in range(5)}
    client = await make_gateway(prompts=files, watch=True)
    prompts = client.config_dir / "prompts"
    await asyncio.sleep(0.2)
    for edit in range(200):
        (prompts / f"p{edit % 5}.toml").write_text(prompt(f"edit {edit}"))
        if edit % 20 == 0:
            await asyncio.sleep(0.005)  # requests keep flowing meanwhile
            assert (await client.get("/healthz")).status == 200

    async def final() -> bool:
        texts = [await served(client, f"p{i}") for i in range(5)]
        return texts == [f"edit {195 + i}" for i in range(5)]

    await wait_until(final, timeout=5)
    state = await readyz(client)
    assert state["last_reload_error"] is None
    app_holder = client.server.app.state.prompts
    assert app_holder.current.prompts["p0"].versions[1].messages[0].render({})["content"] == "edit 195"


async def test_large_sets_rebuild_in_a_builder_process(make_gateway, monkeypatch):
    monkeypatch.setattr("promptd.prompts.reload.PROCESS_BUILD_MIN_FILES", 2)
    files = {f"p{i}.toml": prompt(f"start {i}") for i in range(3)}
    client = await make_gateway(prompts=files, watch=True)
    holder = client.server.app.state.reloader
    assert holder._builder is not None  # started with the app, before any edit
    prompts = client.config_dir / "prompts"
    await asyncio.sleep(0.5)
    (prompts / "p1.toml").write_text(prompt("edited in the builder"))
    await wait_until(lambda: _equals(client, "edited in the builder", "p1"), timeout=5)
    assert await served(client, "p0") == "start 0"  # unchanged files keep their compiled form
    (prompts / "p2.toml").write_text(prompt("{{#broken}}"))

    async def failed() -> bool:
        return (await readyz(client))["last_reload_error"] is not None

    await wait_until(failed, timeout=5)
    assert await served(client, "p2") == "start 2"
    (prompts / "p2.toml").write_text(prompt("fixed"))
    await wait_until(lambda: _equals(client, "fixed", "p2"), timeout=5)


async def _gateway_on_path(gateway_client, root: Path, prompts_path: str):
    """promptd whose prompts.paths is `prompts_path` under `root` (created by the caller)."""
    from promptd.app import create_app
    from promptd.ops.logs import AccessLog
    from promptd.settings import load_settings

    (root / "promptd.toml").write_text(
        f'[prompts]\npaths = ["{prompts_path}"]\nwatch = true\n'
        '[[upstreams]]\nname = "mock"\nbase_url = "http://127.0.0.1:9/v1"\nmodels = ["gpt-*"]\n'
    )
    app = create_app(load_settings(root, environ={}), access_log=AccessLog(stream=LogSink()))
    client = await gateway_client(app)
    await asyncio.sleep(0.3)  # let the watcher start
    return client


async def test_a_re_pointed_symlinked_path_is_served(gateway_client, tmp_path):
    """git-sync: prompts.paths = ["current"], and `current -> rev1` becomes `current -> rev2`."""
    for rev, text in (("rev1", "one"), ("rev2", "two")):
        (tmp_path / rev).mkdir()
        (tmp_path / rev / "p.toml").write_text(prompt(text))
    (tmp_path / "current").symlink_to("rev1")
    client = await _gateway_on_path(gateway_client, tmp_path, "current")
    assert await served(client) == "one"
    (tmp_path / "next").symlink_to("rev2")
    os.replace(tmp_path / "next", tmp_path / "current")  # the atomic swap git-sync does
    took = await wait_until(lambda: _equals(client, "two"))
    assert took < 1.0
    (tmp_path / "rev2" / "p.toml").write_text(prompt("three"))  # and the new target is watched
    await wait_until(lambda: _equals(client, "three"))


async def test_a_deleted_then_recreated_directory_is_watched_again(gateway_client, tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "p.toml").write_text(prompt("one"))
    client = await _gateway_on_path(gateway_client, tmp_path, "prompts")
    (tmp_path / "prompts" / "p.toml").unlink()
    (tmp_path / "prompts").rmdir()
    await wait_until(lambda: _reload_error(client, "gone or is not a directory"))
    assert await served(client) == "one"  # the last good set keeps serving
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "p.toml").write_text(prompt("two"))
    await wait_until(lambda: _equals(client, "two"))
    (tmp_path / "prompts" / "p.toml").write_text(prompt("three"))
    await wait_until(lambda: _equals(client, "three"))
    assert (await readyz(client))["last_reload_error"] is None


async def _reload_error(client, text: str) -> bool:
    error = (await readyz(client))["last_reload_error"]
    return bool(error) and any(text in line for line in error)


async def test_emptying_the_directory_is_a_failed_reload(make_gateway):
    client, path = await watched(make_gateway, "one")
    path.unlink()
    await wait_until(lambda: _reload_error(client, "no prompt files left"))
    assert await served(client) == "one"


async def test_a_fifo_never_blocks_a_reload(make_gateway):
    client, path = await watched(make_gateway, "one")
    os.mkfifo(path.parent / "x.toml")
    path.write_text(prompt("two"))
    await wait_until(lambda: _equals(client, "two"))
    response = await client.get("/readyz")
    assert response.status == 200


async def test_a_deeply_nested_file_is_a_load_error(make_gateway):
    client, path = await watched(make_gateway, "one")
    (path.parent / "deep.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    await wait_until(lambda: _reload_error(client, "deep.toml: nests too deep to be loaded"))
    text = await (await client.get("/metrics")).text()
    assert 'promptd_config_reloads_total{result="failure"} 1.0' in text


async def test_a_retired_set_stays_whole_for_whoever_holds_it(make_gateway):
    client, path = await watched(make_gateway, "one")
    old = client.server.app.state.prompts.current
    path.write_text(prompt("two"))
    await wait_until(lambda: _equals(client, "two"))
    await asyncio.sleep(0.2)  # the retired prompts were released in a thread
    assert list(old.prompts) == ["p"]
    assert old.prompts["p"].versions[1].messages[0].render({})["content"] == "one"
    try:
        old.prompts["q"] = old.prompts["p"]  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise AssertionError("a served set must be read-only")
