"""The interface every upstream kind implements, and what a handler hands it.

A handler compiles (or not) and picks an upstream with the router; the
upstream answers the client: `HttpUpstream` relays to a real API, `EchoUpstream`
answers locally. Handlers never branch on the kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptd.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from promptd.http.envelope import Exchange
    from promptd.state import AppState


class Call:
    """One request on its way upstream. `path` is below the upstream's base URL
    (`/chat/completions`, `/responses`, `/embeddings?x=1`); `raw` is the body to
    send (or its pieces, sent in one writev without joining them); `body` is its
    decoded form when the handler has one."""

    __slots__ = ("request", "state", "exchange", "path", "raw", "body", "headers")

    def __init__(
        self,
        request: Request,
        state: AppState,
        exchange: Exchange,
        path: str,
        raw: bytes | bytearray | tuple[bytes | memoryview, ...],
        body: dict[str, Any] | None,
        headers: dict[str, str],
    ) -> None:
        self.request = request
        self.state = state
        self.exchange = exchange
        self.path = path
        self.raw = raw
        self.body = body
        self.headers = headers  # added to the client's answer (x-request-id, x-promptd-*)

    def whole_raw(self) -> bytes | bytearray:
        """The body to send as one buffer (joined when it is in pieces)."""
        raw = self.raw
        return b"".join(raw) if raw.__class__ is tuple else raw  # type: ignore[return-value, arg-type]


class Upstream:
    """A named destination for the models its glob patterns match."""

    __slots__ = ("name", "patterns", "default")

    kind = ""

    def __init__(self, name: str, patterns: tuple[str, ...], default: bool) -> None:
        self.name = name
        self.patterns = patterns
        self.default = default

    async def forward(self, call: Call) -> Response | StreamResponse:
        raise NotImplementedError

    def __repr__(self) -> str:  # never show a key
        return f"{type(self).__name__}({self.name!r})"
