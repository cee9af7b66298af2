"""promptd's HTTP/1.1 server: one `HttpConnection` per client connection.

aiohttp's server side cost about 190,000 instructions per request here (a yarl
URL, a multidict, a payload stream, a router walk and a writer for every
request): more than all of promptd's own work on a compiled request. promptd
serves a dozen routes with bodies it reads whole, so this protocol parses with
httptools (llhttp, as the upstream client does), hands each request to the app
as a `Request`, and writes the answer in one call.

What it does for every connection:
- keep-alive and pipelining: requests are answered one at a time, in order;
- `Expect: 100-continue`: the interim answer is sent when the handler reads the body;
- limits: the request line, each header and the header block, the body (413);
- a large body (a Content-Length of `HELD_FROM` or more) that has started arriving
  but that one read did not bring whole is received straight into one buffer of
  its length: the event loop reads into it, with no bytes object per read, no
  parser pass and no join. What clients announced and have not sent yet holds at
  most `HELD_BUDGET` bytes; past it, bodies come in pieces as before;
- client timeouts: a request's head must arrive within `client_timeout_s` of its
  first byte (or of the connection opening); an idle keep-alive connection is
  closed after `keepalive_timeout_s`. A sweeper checks every connection a few
  times per timeout: no timer per request;
- a body the handler did not read (an early 401 or 413) is read and dropped for
  up to `LINGER_S` before the connection closes, so the client sees the answer
  instead of a reset;
- a client that disconnects cancels its handler;
- malformed HTTP gets an OpenAI-shaped 400 `malformed_request` and a close,
  logged without its bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools

from promptd.errors import BadRequest, PromptdError
from promptd.http.messages import CHUNKED, NO_BODY, RAW, Headers, Request, Response, StreamResponse
from promptd.timeouts import sweep, sweep_interval

if TYPE_CHECKING:
    from promptd.settings import Settings

log = logging.getLogger("promptd")

MAX_TARGET = 8190  # bytes of a request target (aiohttp's and nginx's default line limit)
MAX_FIELD = 65536  # bytes of one header value
MAX_HEAD = 256 * 1024  # bytes of all the headers of one request
LINGER_S = 5.0  # how long an unread body is drained after the answer before the connection closes
_MAX_QUEUED = 8  # pipelined requests parsed ahead of the one being answered; then reading pauses
HELD_FROM = 64 * 1024  # bodies with at least this Content-Length are received into one buffer
HELD_BUDGET = 64 * 1024 * 1024  # bytes of such buffers still awaited from clients; past it, bodies come in pieces
_NO_BODY = frozenset({204, 304})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Handle = Callable[[Request], Awaitable["Response | StreamResponse"]]


class _Refused(Exception):
    """Raised inside a parser callback: the request breaks a limit."""


_reasons = {status.value: status.phrase for status in HTTPStatus}


def _status_line(status: int, reason: str | None) -> str:
    return f"HTTP/1.1 {status} {reason or _reasons.get(status, 'Unknown')}\r\n"


_date = [0, ""]


def _http_date() -> str:
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[0] = now
        _date[1] = formatdate(now, usegmt=True)
    return _date[1]


def _head(status: int, reason: str | None, headers: list[tuple[str, str]], framing: str) -> bytes:
    """The status line and headers, with the Date (unless the handler relays one), then
    `framing` (the body's framing headers and the blank line). A header name or value
    with CR or LF raises ValueError."""
    lines = [_status_line(status, reason)]
    dated = False
    for name, value in headers:
        if name[:1] in ("d", "D") and name.lower() == "date":
            dated = True
        lines.append(f"{name}: {value}\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("a header of the answer contains CR or LF")
    if not dated:
        text += f"Date: {_http_date()}\r\n"
    return (text + framing).encode("utf-8", "surrogateescape")


class Connections:
    """A listener's connections: their shared settings, the set of open ones (for
    the sweeper and for shutdown) and whether the listener is shutting down."""

    def __init__(self, handle: Handle, settings: Settings) -> None:
        self.handle = handle
        self.max_body = settings.max_body_bytes
        self.head_timeout = settings.client_timeout_s
        self.idle_timeout = settings.keepalive_timeout_s
        self.open: set[HttpConnection] = set()
        self.closing = False  # shutting down: answer what is in flight, then close
        self.held = 0  # bytes announced by held bodies that have not arrived yet

    def new(self) -> HttpConnection:
        return HttpConnection(self)

    async def sweep(self) -> None:
        """Close connections whose head is overdue, that idled too long, or that lingered."""
        interval = sweep_interval(min(self.head_timeout, self.idle_timeout))
        await sweep(self.open, interval, HttpConnection.expire)

    def close_idle(self) -> None:
        """Shutdown: close every connection that is not answering a request."""
        self.closing = True
        for connection in list(self.open):
            if connection.current is None:
                connection.close()


class HttpConnection(asyncio.Protocol):
    __slots__ = (
        "connections",
        "loop",
        "parser",
        "transport",
        "target",
        "header_pairs",
        "head_bytes",
        "incoming",
        "current",
        "task",
        "next_request",
        "queued",
        "between",
        "head_since",
        "idle_since",
        "linger_since",
        "no_linger",
        "refusal",
        "stopped",
        "reading_paused",
        "writing_paused",
        "_drain_waiter",
    )

    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.target = b""
        self.header_pairs: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.incoming: Request | None = None  # the request whose body is being parsed
        self.current: Request | None = None  # the request being answered
        self.task: asyncio.Task[None] | None = None  # answers this connection's requests
        self.next_request: asyncio.Future[Request] | None = None  # what the idle task waits on
        self.queued: deque[Request] = deque()  # pipelined requests waiting their turn
        self.between = True  # between requests: the next byte starts one
        self.head_since = 0.0  # when the head being awaited started (0: none awaited)
        self.idle_since = 0.0  # when the connection went idle between requests
        self.linger_since = 0.0  # when an answered request's unread body started being dropped
        self.no_linger = False  # a stalled body: close right after the answer
        self.refusal: bytes | None = None  # a 400 to send after the current answer, then close
        self.stopped = False  # nothing more is parsed (malformed input or a protocol switch)
        self.reading_paused = False
        self.writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.open.add(self)
        self.head_since = self.loop.time()  # a connection that never sends a request line is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.open.discard(self)
        self.transport = None
        if self.incoming is not None:
            self.connections.held -= self.incoming.awaited()  # never to arrive
        if self.task is not None:
            self.task.cancel()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client has gone"))

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        if self.between and not self.head_since:
            self.head_since = self.loop.time()
            self.idle_since = 0.0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # A protocol switch (Upgrade, CONNECT) is not offered: the request is
            # answered as a plain one, then the connection closes.
            self.stopped = True
            request = self.incoming or (self.queued[-1] if self.queued else self.current)
            if request is not None:
                request.keep_alive = False
            if self.incoming is not None:
                self.on_message_complete()
        except httptools.HttpParserCallbackError as exc:
            reason = exc.__context__ if isinstance(exc.__context__, _Refused) else None
            self._refuse(str(reason) if reason else "malformed HTTP request", type(exc).__name__)
        except httptools.HttpParserError as exc:
            self._refuse("malformed HTTP request", type(exc).__name__)
        incoming = self.incoming
        if incoming is not None and not self.stopped:
            self._hold(incoming)

    def _hold(self, request: Request) -> None:
        """A body still to come after this read: when it is large, its rest is read
        straight into one buffer of its announced length (`_HeldBody`)."""
        length = request.content_length
        connections = self.connections
        transport = self.transport
        if (
            length is None
            or not HELD_FROM <= length <= connections.max_body
            or not request.received  # not started (a client waiting for 100 Continue): nothing held yet
            or request.too_large  # past the limit, or an answered request's body being dropped
            or "Transfer-Encoding" in request.headers
            or connections.held + length - request.received > HELD_BUDGET
            or transport is None
        ):
            return
        sink = request.hold(length)
        connections.held += len(sink)
        transport.set_protocol(_HeldBody(self, request, sink))

    def held_body_received(self) -> None:
        """A held body's last bytes arrived (in `_HeldBody`): reading is back here."""
        # This parser still counts the body it did not see: a new one reads the next request.
        self.parser = httptools.HttpRequestParser(self)
        self.on_message_complete()

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.between = False
        self.target = b""
        self.header_pairs = []
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.target += url
        if len(self.target) > MAX_TARGET:
            raise _Refused(f"request target longer than {MAX_TARGET} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if len(value) > MAX_FIELD or len(name) > MAX_FIELD:
            raise _Refused(f"request header longer than {MAX_FIELD} bytes")
        if self.head_bytes > MAX_HEAD:
            raise _Refused(f"request headers larger than {MAX_HEAD} bytes")
        self.header_pairs.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        headers = Headers(
            [(name.decode("latin-1"), value.decode("utf-8", "surrogateescape")) for name, value in self.header_pairs]
        )
        request = Request(
            self,
            parser.get_method().decode("ascii", "replace"),
            self.target.decode("utf-8", "surrogateescape"),
            headers,
            parser.get_http_version(),
            parser.should_keep_alive(),
        )
        self.head_since = 0.0
        if self.linger_since:
            return  # closing once the unread body is drained: nothing more is answered
        self.incoming = request
        if self.current is None:
            self._start(request)
        else:
            self.queued.append(request)
            if len(self.queued) >= _MAX_QUEUED and not self.reading_paused and self.transport is not None:
                self.reading_paused = True
                self.transport.pause_reading()

    def on_body(self, body: bytes) -> None:
        request = self.incoming
        if request is not None:
            request.feed(body, self.connections.max_body)

    def on_message_complete(self) -> None:
        request = self.incoming
        self.incoming = None
        self.between = True
        if self.linger_since:
            self._end_writing()  # the unread body of an answered request is drained: done
        elif request is not None:
            request.finish()

    # -- answering
    def _start(self, request: Request) -> None:
        self.current = request
        self.idle_since = 0.0
        waiter = self.next_request
        if waiter is not None:  # the connection's task waits for this request
            self.next_request = None
            waiter.set_result(request)
        else:
            self.task = self.loop.create_task(self._serve(request))

    async def _serve(self, request: Request) -> None:
        """The connection's task: answers its requests one after another (one task
        per connection, not per request), and waits while the connection is idle."""
        try:
            while True:
                if not await self._answer(request):
                    return
                following = self._answered(request)
                if following is None:
                    if self.transport is None or self.stopped:
                        return
                    waiter = self.next_request = self.loop.create_future()
                    following = await waiter
                request = following
        except asyncio.CancelledError:
            return  # the client has gone
        finally:
            self.task = None

    async def _answer(self, request: Request) -> bool:
        """Answer one request; False if the connection is done."""
        try:
            response = await self.connections.handle(request)
        except asyncio.CancelledError:
            raise
        except Exception:  # the app renders every error of its own; this is a bug
            log.exception("unexpected error answering a request")
            response = Response(
                body=PromptdError("internal error in promptd", code="internal_error").render(),
                status=500,
                content_type="application/json",
            )
            response.force_close()
        if self.transport is None:
            return False
        if not response.prepared:
            try:
                self._write_response(request, response)  # type: ignore[arg-type]
            except ValueError:
                log.exception("an answer could not be written")
                self.close()
                return False
        request.keep_alive = request.keep_alive and response.keep_alive
        return True

    def _write_response(self, request: Request, response: Response) -> None:
        # An unread body (an early 401 or 413) is dropped, then the connection closes.
        keep_alive = request.keep_alive and response.keep_alive and request.complete and not self.connections.closing
        response.keep_alive = keep_alive
        status = response.status
        body = response.body
        if status in _NO_BODY or status < 200:
            framing = ""
            body = b""
        else:
            framing = f"Content-Length: {len(body)}\r\n"
            if request.method == "HEAD":
                body = b""
        framing += _connection_header(request, keep_alive) + "\r\n"
        head = _head(status, response.reason, response.headers, framing)
        transport = self.transport
        assert transport is not None
        if len(body) < 65536:
            transport.write(head + body if body else head)
        else:
            transport.writelines((head, body))

    def start_stream(self, request: Request, response: StreamResponse) -> int:
        """Write a streamed answer's head; its framing (NO_BODY, RAW or CHUNKED)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client has gone")
        keep_alive = request.keep_alive and response.keep_alive and request.complete and not self.connections.closing
        status = response.status
        if status in _NO_BODY or status < 200:
            mode, framing = NO_BODY, ""
        elif response.content_length is not None:
            mode, framing = RAW, f"Content-Length: {response.content_length}\r\n"
        elif request.version == "1.0":
            mode, framing, keep_alive = RAW, "", False  # the end of the body is the end of the connection
        else:
            mode, framing = CHUNKED, "Transfer-Encoding: chunked\r\n"
        if request.method == "HEAD":
            mode = NO_BODY
        response.keep_alive = keep_alive
        framing += _connection_header(request, keep_alive) + "\r\n"
        transport.write(_head(status, response.reason, response.headers, framing))
        return mode

    def write_all(self, pieces: tuple[bytes, ...]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client has gone")
        transport.writelines(pieces)

    def write_continue(self) -> None:
        if self.transport is not None:
            self.transport.write(_CONTINUE)

    async def drained(self) -> None:
        """Return once the client has read enough of what was written."""
        if not self.writing_paused:
            return
        if self.transport is None:
            raise ConnectionResetError("the client has gone")
        waiter = self._drain_waiter = self.loop.create_future()
        await waiter

    def _answered(self, request: Request) -> Request | None:
        """After an answer: the pipelined request to answer next, or None (idle or closing)."""
        self.current = None
        if self.transport is None:
            return None
        if self.refusal is not None:
            self.transport.write(self.refusal)
            self._end_writing()
            return None
        if not request.keep_alive or not request.complete or self.connections.closing:
            self._close_after(request)  # an unread body is drained first, then the connection closes
            return None
        if self.queued:
            following = self.queued.popleft()
            if self.reading_paused and len(self.queued) < _MAX_QUEUED // 2:
                self.reading_paused = False
                self.transport.resume_reading()
            self.current = following
            return following
        self.idle_since = self.loop.time()
        return None

    def _close_after(self, request: Request) -> None:
        """End the connection after the last answer: at once (a stalled body, broken
        input), after a half-close (`_end_writing`), or once the body the client is
        still sending has been dropped."""
        if self.no_linger or self.stopped:
            self.close()
        elif request.complete:
            self._end_writing()
        else:
            request.too_large = True  # what still comes is dropped
            self.linger_since = self.loop.time()

    def _end_writing(self) -> None:
        """The answer was the last one: end the writing side after it, then drop what
        the client still sends until it closes (or for LINGER_S). Closing at once
        with a pipelined request unread would reset the connection, and a reset can
        destroy the answer before the client has read it."""
        transport = self.transport
        if transport is None or not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        self.stopped = True  # nothing more is parsed; the client's end of stream closes
        self.linger_since = self.loop.time()

    def stop_lingering(self) -> None:
        """The body has stalled: close right after the answer, without draining it."""
        self.no_linger = True

    def _refuse(self, message: str, kind: str) -> None:
        """Malformed HTTP: a 400 (after the answer in progress, if any), then close."""
        self.stopped = True
        log.info("malformed HTTP request refused", extra={"status": 400, "error": kind})
        broken = self.incoming
        if broken is not None and broken.complete is False and (broken is self.current or broken in self.queued):
            # The request's head was fine, its body is not: its handler says so.
            broken.broken = f"{message} in the body ({kind})"
            broken.keep_alive = False
            broken.finish()
            return
        body = BadRequest(message, code="malformed_request").render()
        framing = f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        answer = _head(400, None, [("Content-Type", "application/json")], framing) + body
        if self.current is None:
            if self.transport is not None:
                self.transport.write(answer)
            self._end_writing()
        else:
            self.refusal = answer

    def expire(self, now: float) -> None:
        """The sweeper's check: an overdue head, a long idle, a long linger."""
        if self.current is None:
            if self.head_since and now - self.head_since >= self.connections.head_timeout:
                self.close()
            elif self.idle_since and now - self.idle_since >= self.connections.idle_timeout:
                self.close()
            elif self.linger_since and now - self.linger_since >= LINGER_S:
                self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _HeldBody(asyncio.BufferedProtocol):
    """The connection's protocol while the rest of a held body arrives: the event
    loop reads straight into the body's buffer (no bytes object per read, no
    parser, no join). Everything else a transport tells its protocol goes on to
    the connection; with the last byte, the connection is the protocol again."""

    __slots__ = ("connection", "request", "sink")

    def __init__(self, connection: HttpConnection, request: Request, sink: memoryview) -> None:
        self.connection = connection
        self.request = request
        self.sink = sink

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.sink

    def buffer_updated(self, nbytes: int) -> None:
        connection = self.connection
        self.request.filled(nbytes)
        connection.connections.held -= nbytes
        if nbytes < len(self.sink):
            self.sink = self.sink[nbytes:]
            return
        if connection.transport is not None:
            connection.transport.set_protocol(connection)
        connection.held_body_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.connection.eof_received()

    def pause_writing(self) -> None:
        self.connection.pause_writing()

    def resume_writing(self) -> None:
        self.connection.resume_writing()


def _connection_header(request: Request, keep_alive: bool) -> str:
    if not keep_alive:
        return "Connection: close\r\n"
    if request.version == "1.0":
        return "Connection: keep-alive\r\n"
    return ""
