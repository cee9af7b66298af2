"""The listening side: client timeouts, the listen backlog, and graceful drain.

aiohttp closes a connection that stays idle for its keep-alive timeout, but a
client that sends half a request line, or headers and then a stalled body, was
kept forever. `ConnectionHandler` gives every request `client_timeout_s` to
arrive whole: the clock starts with the first byte of a request (or when the
connection opens) and stops when its headers are in; the body is read in the
handler under the same limit (`http/body.py`).

`Listener.drain` is SIGTERM: stop accepting, let requests and streams finish for
`shutdown_grace_s`, then end every stream still open with a final SSE error
event (`shutting_down`) and close the rest, so the process exits about a
second after the grace (aiohttp's own shutdown waits the timeout twice).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from promptd.errors import PromptdError
from promptd.settings import Settings
from promptd.state import APP_STATE, AppState

log = logging.getLogger("promptd")

# aiohttp would listen() again with its default of 128: connections beyond the
# backlog are refused under a burst. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096
_AFTER_GRACE_S = 0.5  # what the last writes and cancellations get after the grace
_SHUTTING_DOWN = PromptdError(
    "promptd is shutting down: the stream was ended after server.shutdown_grace_s", code="shutting_down"
).render()


class ConnectionHandler(RequestHandler):
    """aiohttp's connection handler with a deadline for each request's head, and
    malformed requests answered OpenAI-shaped and logged without their bytes.

    The deadline costs a float per request: the site's sweeper checks every open
    connection a few times per `client_timeout_s` (no timer per request)."""

    __slots__ = ("_head_since", "_head_count", "_open")

    def __init__(self, manager: web.Server, *, open_connections: set[ConnectionHandler], **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._open = open_connections
        self._head_since = 0.0  # when the current request's first byte (or the connection) came; 0: not waiting
        self._head_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._open.add(self)
        self._head_since = self._loop.time()  # a connection that never sends a request line is closed too
        self._head_count = self._request_count

    def data_received(self, data: bytes) -> None:
        if not self._head_since and not self._request_in_progress:
            self._head_since = self._loop.time()
            self._head_count = self._request_count
        super().data_received(data)
        if self._head_since and self._request_count != self._head_count:
            self._head_since = 0.0  # the head is in

    def connection_lost(self, exc: BaseException | None) -> None:
        self._open.discard(self)
        super().connection_lost(exc)

    def expire_head(self, now: float, timeout: float) -> None:
        """Close the connection if its request's head is overdue (called by the sweeper)."""
        since = self._head_since
        if (
            since
            and now - since >= timeout
            and not self._request_in_progress
            and self._request_count == self._head_count
        ):
            self.force_close()

    def stop_lingering(self) -> None:
        """Close once the answer is written, without reading what is left of the
        body (aiohttp would wait up to 10 s for it): for a stalled body."""
        self._lingering_time = 0.0

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's error path: a request it could not parse (400), or a failure
        outside promptd's endpoints. Its exception text can quote the raw request
        (an Authorization value, a query string with a key), so only its type is logged."""
        kind = type(exc).__name__ if exc is not None else "unknown"
        if status >= 500:
            log.error("error handling a request", extra={"status": status, "error": kind})
        else:
            log.info("malformed HTTP request refused", extra={"status": status, "error": kind})
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started; the connection is closed")
        code = "internal_error" if status >= 500 else "malformed_request"
        error = PromptdError("malformed HTTP request" if status < 500 else "internal error in promptd", code=code)
        response = web.Response(status=status, body=error.render(), content_type="application/json")
        response.force_close()
        return response


class _Site(web.BaseSite):
    """aiohttp's SockSite with promptd's connection handler and backlog, and the
    sweeper that enforces `client_timeout_s` on request heads."""

    __slots__ = ("_sock", "_client_timeout", "_name", "_open", "_sweeper")

    def __init__(self, runner: web.AppRunner, sock: socket.socket, client_timeout: float) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._sock = sock
        self._client_timeout = client_timeout
        host, port = sock.getsockname()[:2]
        self._name = f"http://{host}:{port}"
        self._open: set[ConnectionHandler] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        # What aiohttp's Server.__call__ does, with the subclass.
        kwargs = dict(server._kwargs)

        def handler() -> RequestHandler:
            return ConnectionHandler(server, loop=server._loop, open_connections=self._open, **kwargs)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(handler, sock=self._sock, backlog=self._backlog)
        self._sweeper = asyncio.create_task(self._sweep(), name="promptd-client-timeouts")

    async def _sweep(self) -> None:
        timeout = self._client_timeout
        interval = max(0.05, min(1.0, timeout / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for connection in list(self._open):
                connection.expire_head(now, timeout)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await super().stop()

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()


class Listener:
    """A running app on a socket."""

    def __init__(self, app: web.Application, runner: web.AppRunner, site: _Site, sock: socket.socket) -> None:
        self.app = app
        self.runner = runner
        self.site = site
        self.sock = sock

    @property
    def state(self) -> AppState:
        return self.app[APP_STATE]

    async def drain(self, grace: float) -> None:
        """Stop accepting; wait up to `grace` for in-flight requests; then end what is left."""
        self.site.stop_accepting()
        state = self.state
        deadline = time.monotonic() + grace
        while state.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if state.inflight:
            await _end_streams(state)
        await self.runner.cleanup()


async def _end_streams(state: AppState) -> None:
    """After the grace: a final error event on every open SSE stream, then close."""
    ended = 0
    for exchange in list(state.inflight):
        stream = exchange.stream
        if stream is None:
            continue
        exchange.shut_down = True
        try:
            if exchange.sse:
                prefix = b"" if exchange.at_event_boundary else b"\n\n"
                async with asyncio.timeout(_AFTER_GRACE_S):
                    await stream.write(prefix + b"data: " + _SHUTTING_DOWN + b"\n\n")
        except (OSError, TimeoutError, RuntimeError):
            pass
        ended += 1
        transport = exchange.transport
        if transport is not None:
            transport.close()
    if ended:
        log.warning("ended %d open stream(s) after the shutdown grace", ended, extra={"streams": ended})


async def start_listening(
    app: web.Application, settings: Settings, sock: socket.socket, *, handler_cancellation: bool = True
) -> Listener:
    runner = web.AppRunner(
        app,
        handler_cancellation=handler_cancellation,
        shutdown_timeout=_AFTER_GRACE_S,  # the grace itself is `Listener.drain`'s
        keepalive_timeout=settings.keepalive_timeout_s,
        access_log=None,
        handle_signals=False,
    )
    await runner.setup()
    site = _Site(runner, sock, settings.client_timeout_s)
    await site.start()
    return Listener(app, runner, site, sock)
