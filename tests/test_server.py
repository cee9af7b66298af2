"""promptd as a process: graceful SIGTERM, SIGHUP, several workers, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from conftest import write_config
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parent.parent
PROMPT = '[[versions]]\nversion = 1\nmodel = "echo"\nmessages = [{ role = "system", content = "%s" }]\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    def __init__(self, config: Path, log: Path, *args: str) -> None:
        self.port = free_port()
        self.log = log
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "promptd", "serve", str(config), "--port", str(self.port), *args],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=ROOT,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict]:
        return [orjson.loads(line) for line in self.log.read_bytes().splitlines() if line.startswith(b"{")]

    async def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("promptd did not start: " + self.log.read_text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def daemon(tmp_path):
    started: list[Daemon] = []

    def start(config: Path, *args: str) -> Daemon:
        d = Daemon(config, tmp_path / f"promptd-{len(started)}.log", *args)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.process.poll() is None:
            d.process.kill()
            d.process.wait()


async def test_sigterm_lets_an_in_flight_stream_finish(daemon, tmp_path, upstream):
    config = write_config(
        tmp_path / "c", {"p.toml": PROMPT % "x"}, upstream_url=upstream.url, server="shutdown_grace_s = 10"
    )
    d = daemon(config)
    await d.wait_ready()
    upstream.behaviour = "gated_stream"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            d.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [], "stream": True}
        ) as response:
            await response.content.readuntil(b"\n\n")
            d.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            with pytest.raises(aiohttp.ClientConnectionError):  # no new connections are accepted
                async with aiohttp.ClientSession() as other:
                    await other.get(d.url + "/healthz")
            upstream.gate.set()
            rest = await response.content.read()
    assert rest.endswith(b"data: [DONE]\n\n")
    assert await asyncio.to_thread(d.process.wait, 10) == 0
    assert any(line.get("msg") == "stopped" for line in d.lines())


async def test_large_bodies_on_the_served_event_loop(daemon, tmp_path, upstream):
    """The daemon's own loop (uvloop) receives large bodies into one buffer: whole,
    pipelined and in cuts that fall anywhere, as passthrough and compiled."""
    prompt = '[[versions]]\nversion = 1\nmodel = "gpt-4o"\nmessages = [{ role = "system", content = "x" }]\n'
    config = write_config(tmp_path / "c", {"p.toml": prompt}, upstream_url=upstream.url)
    d = daemon(config)
    await d.wait_ready()
    conversation = [
        {"role": "user", "content": f"{i}: " + 'ü \\ "q" ' * 100} for i in range(600)
    ]  # under the recorder's 1 MB
    plain = orjson.dumps({"model": "gpt-4o-mini", "messages": conversation})
    compiled = orjson.dumps({"prompt_id": "p", "model": "gpt-4o-mini", "messages": conversation})
    requests = b"".join(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        for body in (plain, compiled, plain)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    for cut in (len(requests), 9000):
        for start in range(0, len(requests), cut):
            writer.write(requests[start : start + cut])
            await writer.drain()
        for _ in range(3):
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 "), head
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
    writer.close()
    assert [r["raw"] for r in upstream.requests if r["body"]["messages"][0]["role"] == "user"] == [plain] * 4
    sent_compiled = [r["body"] for r in upstream.requests if r["body"]["messages"][0]["role"] == "system"]
    assert sent_compiled == [{"model": "gpt-4o", "messages": [{"role": "system", "content": "x"}, *conversation]}] * 2
    assert d.stop() == 0


async def test_sighup_forces_a_reload(daemon, tmp_path):
    config = write_config(tmp_path / "c", {"p.toml": PROMPT % "before"}, watch=False)
    d = daemon(config)
    await d.wait_ready()
    (config / "prompts" / "p.toml").write_text(PROMPT % "after")
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(0.3)
        async with session.post(d.url + "/v1/prompts/p/render", json={}) as response:
            assert (await response.json())["body"]["messages"][0]["content"] == "before"  # watch = false
        d.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            async with session.get(d.url + "/readyz") as response:
                if (await response.json())["generation"] == 2:
                    break
            await asyncio.sleep(0.05)
        async with session.post(d.url + "/v1/prompts/p/render", json={}) as response:
            assert (await response.json())["body"]["messages"][0]["content"] == "after"
    assert d.stop() == 0


def _total_requests(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "promptd_requests":
            total += sum(
                s.value
                for s in family.samples
                if s.name == "promptd_requests_total" and s.labels["endpoint"] == "chat_completions"
            )
    return total


async def test_two_workers_share_the_port_and_metrics(daemon, tmp_path):
    config = write_config(tmp_path / "c", {"p.toml": PROMPT % "x"})
    d = daemon(config, "--workers", "2")
    await d.wait_ready()
    sent = 0
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time: the kernel spreads them
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(40):
            for _ in range(10):
                async with session.post(d.url + "/v1/chat/completions", json={"prompt_id": "p"}) as response:
                    assert response.status == 200
                    sent += 1
            await asyncio.sleep(0.06)  # let access logs flush
            pids = {line["pid"] for line in d.lines() if line.get("logger") == "promptd.access"}
            if len(pids) == 2:
                break
        assert len(pids) == 2, "both workers should have served requests"
        # Whichever worker answers the scrape, the totals are all workers' (each publishes
        # its counts within PUBLISH_INTERVAL_S).
        await asyncio.sleep(0.5)
        for _ in range(6):
            async with session.get(d.url + "/metrics") as response:
                assert _total_requests(await response.text()) == sent
    assert d.stop() == 0


async def test_a_dead_worker_is_restarted(daemon, tmp_path):
    config = write_config(tmp_path / "c", {"p.toml": PROMPT % "x"})
    d = daemon(config, "--workers", "2")
    await d.wait_ready()
    await asyncio.sleep(0.5)
    victim = next(line["pid"] for line in d.lines() if line.get("msg") == "worker 1 started")
    os.kill(victim, signal.SIGKILL)
    for _ in range(100):
        started = [line for line in d.lines() if line.get("msg") == "worker 1 started"]
        if len(started) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(started) == 2 and started[1]["pid"] != victim
    assert any("exited with -9" in line.get("msg", "") for line in d.lines())
    await asyncio.sleep(0.5)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for _ in range(20):
            async with session.post(d.url + "/v1/chat/completions", json={"prompt_id": "p"}) as response:
                assert response.status == 200
    assert d.stop() == 0


async def test_serve_logs_are_json_and_log_level_works(daemon, tmp_path):
    config = write_config(tmp_path / "c", {"p.toml": PROMPT % "x"})
    d = daemon(config, "--log-level", "warning")
    await d.wait_ready()
    async with aiohttp.ClientSession() as session:
        await session.get(d.url + "/healthz")
    assert d.stop() == 0
    raw = d.log.read_bytes().splitlines()
    assert all(line.startswith(b"{") for line in raw)
    assert not any(orjson.loads(line).get("level") == "info" for line in raw)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_second_promptd_on_the_same_port_fails(daemon, tmp_path, workers):
    config = write_config(tmp_path, {"p.toml": PROMPT % "one"}, upstream_url="http://127.0.0.1:9/v1")
    first = daemon(config, "--workers", workers)
    await first.wait_ready()
    second = subprocess.run(
        [sys.executable, "-m", "promptd", "serve", str(config), "--port", str(first.port), "--workers", workers],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert second.returncode == 2
    assert "address already in use" in second.stderr.lower()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_workers_exit_when_the_supervisor_is_killed(daemon, tmp_path):
    config = write_config(tmp_path, {"p.toml": PROMPT % "one"}, upstream_url="http://127.0.0.1:9/v1")
    d = daemon(config, "--workers", "2", "--log-level", "info")
    await d.wait_ready()
    await asyncio.sleep(0.5)
    pids = [line["pid"] for line in d.lines() if line.get("msg", "").startswith("worker ") and "pid" in line]
    assert len(pids) == 2
    d.process.kill()
    d.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        await asyncio.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "workers outlived their supervisor"
    with socket.socket() as sock:  # and the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", d.port))


async def test_serving_goes_on_when_nobody_reads_stderr(tmp_path):
    """stderr on a pipe nobody reads: the log lines fill it in a moment; requests must not hang."""
    config = write_config(tmp_path, {"p.toml": PROMPT % "one"}, upstream_url="http://127.0.0.1:9/v1")
    port = free_port()
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "promptd", "serve", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=write_end,
        cwd=ROOT,
    )
    os.close(write_end)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    async with session.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            body = {"model": "echo", "messages": [{"role": "user", "content": "x" * 200}], "user": "y" * 300}
            started = time.monotonic()
            for _ in range(1500):  # about 600 KB of access log, ten times what the pipe holds
                async with session.post(url + "/v1/chat/completions", json=body, timeout=aiohttp.ClientTimeout(5)) as r:
                    assert r.status == 200
            async with session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(5)) as response:
                assert response.status == 200
            async with session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(5)) as response:
                assert "promptd_log_lines_dropped_total" in await response.text()
        assert time.monotonic() - started < 60  # the lines wait in the writer's queue (or are dropped)
    finally:
        process.terminate()
        os.close(read_end)  # now the writer thread's blocked write fails and the process can exit
        process.wait(timeout=20)
