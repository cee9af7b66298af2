"""Shared fixtures: a config directory written into tmp_path, a real local
upstream that records what reached it, and the real promptd app in front."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer
from yarl import URL

from promptd.app import App, create_app
from promptd.http.listener import Listener, start_listening
from promptd.ops.logs import AccessLog
from promptd.ops.metrics import Metrics
from promptd.settings import load_settings

SUPPORT = """
id = "support"
description = "Support agent"

[environments]
production = 2
staging = 3

[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [{ role = "system", content = "v1 for {{company}}" }]
[versions.variables]
company = { default = "Acme" }

[[versions]]
version = 2
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "You help customers of {{company}}." },
  { role = "user", content = "I am {{name}} and my issue is {{issue}}." },
]
[versions.params]
temperature = 0.2
max_tokens = 512
[versions.variables]
company = { type = "string", default = "Acme" }
issue = { type = "string", enum = ["billing", "technical"] }

[[versions]]
version = 3
model = "gpt-4o"
messages = [{ role = "system", content = "v3 {{company}}" }]
[versions.variables]
company = { default = "Acme" }
"""

NOMODEL = """
[[versions]]
version = 1
messages = [{ role = "system", content = "Translate to {{language}}." }]
[versions.variables]
language = { default = "French" }
"""


def write_config(
    root: Path,
    prompts: dict[str, str] | None = None,
    *,
    upstream_url: str = "http://127.0.0.1:9/v1",
    api_key: str | None = None,
    server: str = "",
    auth: str = "",
    extra_upstreams: str = "",
    watch: bool = False,
    read_timeout: float = 2,
    ui: str = "",
) -> Path:
    """Write promptd.toml and prompts/ under `root`; return the config directory."""
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    for name, text in (prompts if prompts is not None else {"support.toml": SUPPORT, "nomodel.toml": NOMODEL}).items():
        path = root / "prompts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    key_line = f'api_key = "{api_key}"' if api_key else ""
    (root / "promptd.toml").write_text(
        textwrap.dedent(
            f"""
            [server]
            {server}

            [prompts]
            paths = ["prompts"]
            watch = {str(watch).lower()}

            [[upstreams]]
            name = "mock"
            base_url = "{upstream_url}"
            {key_line}
            models = ["gpt-*", "text-embedding-*"]
            connect_timeout_s = 2
            read_timeout_s = {read_timeout}

            [[upstreams]]
            name = "echo"
            type = "echo"
            models = ["echo"]
            {extra_upstreams}

            [auth]
            {auth}

            [ui]
            {ui}
            """
        )
    )
    return root


class Recorder:
    """A real OpenAI-like upstream. Each request is recorded; `behaviour`
    decides the answer: "ok", "stream", "error500", "slow", "reset_stream", "gated_stream"."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.behaviour = "ok"
        self.gate = asyncio.Event()  # gated_stream waits on it before its last chunk
        self.closed = asyncio.Event()  # set when a stream's client connection goes away
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "header_list": list(request.headers.items()),
                "raw": raw,
                "body": body,
            }
        )
        behaviour = self.behaviour
        if behaviour == "error500":
            return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        if behaviour == "error429":
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "1"})
        if behaviour == "slow":
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                self.closed.set()  # the client's connection went away while we thought
                raise
        if behaviour == "stream_usage":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
            await response.write(
                b"data: " + orjson.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": "hi"}}]}) + b"\n\n"
            )
            usage = {
                "prompt_tokens": 7,
                "completion_tokens": 2,
                "total_tokens": 9,
                "prompt_tokens_details": {"cached_tokens": 3},
            }
            await response.write(b"data: " + orjson.dumps({**chunk, "choices": [], "usage": usage}) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response
        if behaviour in ("stream", "reset_stream", "gated_stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            try:
                for index in range(3):
                    chunk = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "gpt-4o-mini",
                        "choices": [{"index": 0, "delta": {"content": f"part{index} "}, "finish_reason": None}],
                    }
                    await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                    if behaviour == "reset_stream" and index == 1:
                        assert request.transport is not None
                        request.transport.abort()
                        return response
                    if behaviour == "gated_stream" and index == 1:
                        await asyncio.wait_for(self.gate.wait(), 10)
                await response.write(b"data: [DONE]\n\n")
            except (asyncio.CancelledError, ConnectionResetError):
                self.closed.set()
                raise
            finally:
                if request.transport is None or request.transport.is_closing():
                    self.closed.set()
            return response
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return web.json_response(
            answer, headers={"x-upstream": "yes", "Connection": "keep-alive", "x-request-id": "upstream-req-1"}
        )

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]


@pytest.fixture
async def upstream(aiohttp_server) -> Recorder:
    recorder = Recorder()
    server = await aiohttp_server(recorder.app())
    recorder.url = str(server.make_url("/v1"))
    return recorder


class LogSink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.data.splitlines() if line]


class GatewayServer(BaseTestServer):
    """The real app served by promptd's own listener on 127.0.0.1, for aiohttp's
    test client (`await gateway_client(app)`)."""

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app
        self.listener: Listener | None = None

    async def start_server(self, loop: Any = None, **kwargs: Any) -> None:
        if self.listener is not None:
            return
        sock = self.socket_factory(self.host, 0, socket.AF_INET)
        self.listener = await start_listening(self.app, self.app.state.settings, sock)
        self.port = sock.getsockname()[1]
        self.scheme = "http"
        self._root = URL(f"http://{self.host}:{self.port}")

    async def _make_runner(self, **kwargs: Any) -> Any:  # pragma: no cover - not an aiohttp app
        raise NotImplementedError

    @property
    def started(self) -> bool:
        return self.listener is not None

    async def close(self) -> None:
        if self.listener is not None and not self._closed:
            self._closed = True
            await self.listener.drain(0)


@pytest.fixture
def gateway_client(aiohttp_client) -> Callable[..., Any]:
    """`await gateway_client(app)` -> aiohttp's test client of a promptd app, closed after the test."""

    async def serve(app: App):
        return await aiohttp_client(GatewayServer(app))

    return serve


@pytest.fixture
def make_gateway(gateway_client, tmp_path, upstream) -> Callable[..., Any]:
    """`await make_gateway(**write_config kwargs)` -> a test client of the real app."""

    async def make(env: dict[str, str] | None = None, **kwargs: Any):
        kwargs.setdefault("upstream_url", upstream.url)
        config = write_config(tmp_path / "config", **kwargs)
        settings = load_settings(config, environ=env or {})
        sink = LogSink()
        log = AccessLog(stream=sink)  # type: ignore[arg-type]
        log.enabled = True
        app = create_app(settings, metrics=Metrics(), access_log=log)
        client = await gateway_client(app)
        client.access_log = sink
        client.config_dir = config
        return client

    return make


@pytest.fixture(scope="session")
def npm_sdk(tmp_path_factory) -> Path:
    """A directory with the `openai` npm package installed (from the npm registry)."""
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed (apt-get install nodejs npm)"
    root = tmp_path_factory.mktemp("npm")
    subprocess.run(["npm", "init", "-y"], cwd=root, check=True, capture_output=True)
    result = subprocess.run(
        ["npm", "install", "openai@7", "--no-audit", "--no-fund"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    shutil.copy(Path(__file__).parent / "js" / "responses_check.mjs", root / "check.mjs")
    return root
