"""The listening side: the socket, the sweeper for client timeouts, and graceful drain.

`Listener.drain` is SIGTERM: stop accepting, close idle connections, let
requests and streams finish for `shutdown_grace_s`, then end every stream still
open with a final SSE error event (`shutting_down`) and close the rest, so the
process exits about a second after the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from promptd.app import App
from promptd.errors import PromptdError
from promptd.http.protocol import Connections
from promptd.settings import Settings
from promptd.state import AppState

log = logging.getLogger("promptd")

# asyncio's default backlog is 100: connections beyond the backlog are refused
# under a burst. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096
_AFTER_GRACE_S = 0.5  # what the last writes and cancellations get after the grace
_SHUTTING_DOWN = PromptdError(
    "promptd is shutting down: the stream was ended after server.shutdown_grace_s", code="shutting_down"
).render()


class Listener:
    """A running app on a socket."""

    def __init__(
        self,
        app: App,
        server: asyncio.Server,
        connections: Connections,
        sweeper: asyncio.Task[None],
        sock: socket.socket,
    ) -> None:
        self.app = app
        self.server = server
        self.connections = connections
        self.sweeper = sweeper
        self.sock = sock

    @property
    def state(self) -> AppState:
        return self.app.state

    async def drain(self, grace: float) -> None:
        """Stop accepting; wait up to `grace` for in-flight requests; then end what is left."""
        self.server.close()
        self.connections.close_idle()
        state = self.state
        deadline = time.monotonic() + grace
        while state.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if state.inflight:
            await _end_streams(state)
        for connection in list(self.connections.open):
            connection.close()
        self.sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sweeper
        await asyncio.sleep(0)  # let cancelled handlers run their cleanup
        await self.app.cleanup()


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


async def start_listening(app: App, settings: Settings, sock: socket.socket) -> Listener:
    """Open the app's resources, then serve it on `sock` (already bound)."""
    await app.startup()
    connections = Connections(app.handle, settings)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(connections.new, sock=sock, backlog=LISTEN_BACKLOG)
    sweeper = asyncio.create_task(connections.sweep(), name="promptd-client-timeouts")
    return Listener(app, server, connections, sweeper, sock)
