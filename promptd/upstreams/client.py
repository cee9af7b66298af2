"""A lean HTTP/1.1 client for upstream requests, with a keep-alive pool.

aiohttp's ClientSession spends about 80 µs of CPU per request on this machine
(request object, URL handling, cookies, tracing, timers): half of what a whole
minimal forwarder costs. promptd sends one kind of request — a method, a path,
headers and a body it already holds as bytes — to a handful of known hosts, so
this client writes the request in one call, parses the answer with httptools
(llhttp, the parser Node.js uses) and hands the body over as it arrives.

Failures are `UpstreamFailure` with a `kind` (connect, timeout, reset) and
whether the answer had started, which is all the gateway needs to answer
502/504 or end a stream with an error event.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

from promptd.timeouts import sweep, sweep_interval

_IDLE_LIMIT = 256  # idle keep-alive connections kept per upstream
_IDLE_TIMEOUT_S = 30.0  # an idle connection older than this is not reused (servers drop them)
_HIGH_WATER = 1 << 20  # pause reading the upstream when this much body waits for a slow client
HEADER_LIMIT = 256 * 1024  # an answer whose header block is larger is refused
# Methods that may be sent again on a new connection when a pooled one turns out to be
# closed: nothing else is ever re-sent, since the upstream may have read it (RFC 9112 9.3.1.1).
_RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS"})


class UpstreamFailure(Exception):
    def __init__(self, kind: str, started: bool, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "connect", "timeout" or "reset"
        self.started = started  # the answer's status line had arrived
        self.detail = detail


class UpstreamResponse:
    """Status and headers of an upstream answer; its body is read with `read()`
    (whole) or `next_chunk()` (as it arrives, b"" at the end)."""

    __slots__ = ("status", "reason", "headers", "content_length", "content_type", "next_chunk", "_conn")

    def __init__(self, conn: _Connection, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        self._conn = conn
        self.next_chunk = conn.next_chunk
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length: int | None = None
        self.content_type = ""
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length" and value.isdigit():
                self.content_length = int(value)
            elif lower == "content-type":
                self.content_type = value.partition(";")[0].strip().lower()

    async def read(self) -> bytes:
        parts = []
        while chunk := await self._conn.next_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """The body was read to the end: the connection may serve the next request."""
        self._conn.release()

    def close(self) -> None:
        """Abandon the answer (client gone, error): the connection is closed."""
        self._conn.close()


class _Connection(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset_message()

    def _reset_message(self) -> None:
        self.head: asyncio.Future[UpstreamResponse] | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.started = False
        self.failure: UpstreamFailure | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.head_only = False
        self.interim = False  # inside a 1xx answer: not the final one
        self.header_bytes = 0
        self.last_data = 0.0
        self.waiting = False  # in the read-timeout watch
        self.read_timeout = 0.0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamFailure("reset", self.started, "the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamFailure("reset", self.started, f"invalid HTTP from the upstream: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._unwatch()
        if self.head is None or self.complete:  # idle, or its last answer was whole
            return
        if self.started and self._ends_at_close():
            self.on_message_complete()  # a body delimited by the connection closing
            return
        detail = "the upstream closed the connection" + (f" ({exc})" if exc else "")
        self._fail(UpstreamFailure("reset", self.started, detail))

    # -- httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > HEADER_LIMIT:
            if self.failure is None:
                self._fail(
                    UpstreamFailure("reset", False, f"the upstream's response headers exceed {HEADER_LIMIT} bytes")
                )
            return
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self.failure is not None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # 100 Continue, 103 Early Hints: interim answers, the final one follows
            # on this connection (101 never gets here: it is an upgrade, refused).
            self.interim = True
            self.reason = ""
            self.headers = []
            self.header_bytes = 0
            return
        self.started = True
        response = UpstreamResponse(self, status, self.reason, self.headers)
        if self.head is not None and not self.head.done():
            self.head.set_result(response)
        if self.head_only:
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if self.complete or self.failure is not None:
            return
        self.complete = True
        # Asked now: once the message is done, llhttp no longer knows.
        self.keep_alive = not self.closed and self.parser.should_keep_alive()
        self._unwatch()
        self._wake()

    # -- the request
    def send(
        self, request: tuple[bytes | memoryview, ...], read_timeout: float, head_only: bool
    ) -> asyncio.Future[UpstreamResponse]:
        self._reset_message()
        self.head_only = head_only
        self.head = self.loop.create_future()
        self.read_timeout = read_timeout
        self.last_data = self.loop.time()
        self.pool.watch.add(self)
        self.waiting = True
        assert self.transport is not None
        if len(request) == 1:
            self.transport.write(request[0])
        else:
            self.transport.writelines(request)
        return self.head

    async def next_chunk(self) -> bytes:
        """The body that arrived since the last call (waiting for some); b"" at the end."""
        while True:
            if self.body:
                return self._take_now()
            if self.complete:
                return b""
            if self.failure is not None:
                raise self.failure
            self.waiter = self.loop.create_future()
            await self.waiter

    def _take_now(self) -> bytes:
        chunk = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.last_data = self.loop.time()  # the read timeout counts upstream silence only
            self.transport.resume_reading()
        return chunk

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, failure: UpstreamFailure) -> None:
        if self.failure is None:
            self.failure = failure
        self._unwatch()
        if self.head is not None and not self.head.done():
            self.head.set_exception(failure)
            self.head.exception()  # retrieved: the caller may be gone already
        self._wake()
        self.close()

    def check_timeout(self, now: float) -> None:
        """The watch's check: fail if the upstream has been silent for the read timeout."""
        if self.complete or self.closed:
            self._unwatch()
            return
        if self.paused:  # promptd stopped reading (a slow client): the upstream is not silent
            self.last_data = now
        elif now - self.last_data >= self.read_timeout:
            self._fail(
                UpstreamFailure("timeout", self.started, f"no data from the upstream for {self.read_timeout:g} s")
            )

    def _unwatch(self) -> None:
        if self.waiting:
            self.waiting = False
            self.pool.watch.discard(self)

    def _ends_at_close(self) -> bool:
        if self.failure is not None:
            return False
        names = {name.lower() for name, _ in self.headers}
        return "content-length" not in names and "transfer-encoding" not in names

    def release(self) -> None:
        """Back to the pool only when its answer was read to the end."""
        if self.complete and self.keep_alive and not self.closed and not self.head_only and not self.body:
            self._unwatch()
            self.pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        self._unwatch()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class _ReadTimeouts:
    """The connections waiting on their upstream, checked a few times per read
    timeout by one task: a request costs a set insertion, not a timer."""

    def __init__(self) -> None:
        self.busy: set[_Connection] = set()
        self.discard = self.busy.discard
        self.shortest = float("inf")  # the shortest read timeout seen: it sets the pace
        self.task: asyncio.Task[None] | None = None

    def add(self, conn: _Connection) -> None:
        self.busy.add(conn)
        if conn.read_timeout < self.shortest:
            self.shortest = conn.read_timeout
            self.close()  # restarted at the new pace
        if self.task is None:
            self.task = conn.loop.create_task(
                sweep(self.busy, sweep_interval(self.shortest), _Connection.check_timeout)
            )

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None


class _Pool:
    """Idle keep-alive connections to one host, most recently used first."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        watch: _ReadTimeouts,
    ) -> None:
        self.loop = loop
        self.watch = watch
        self.host = host
        self.port = port
        self.tls = tls
        self.idle: list[_Connection] = []

    def take(self) -> _Connection | None:
        now = self.loop.time()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and now - conn.idle_since < _IDLE_TIMEOUT_S:
                return conn
            conn.close()
        return None

    def put(self, conn: _Connection) -> None:
        if len(self.idle) >= _IDLE_LIMIT:
            conn.close()
            return
        conn.idle_since = self.loop.time()
        self.idle.append(conn)

    async def connect(self, timeout: float) -> _Connection:
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise UpstreamFailure(
                "timeout", False, f"connecting to {self.host}:{self.port} took over {timeout:g} s"
            ) from None
        except OSError as exc:
            raise UpstreamFailure(
                "connect", False, f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        return conn

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def _answer(
    conn: _Connection, request: tuple[bytes | memoryview, ...], read_timeout: float, head_only: bool
) -> UpstreamResponse:
    try:
        return await conn.send(request, read_timeout, head_only)
    except asyncio.CancelledError:
        conn.close()  # the client left before the answer began: the upstream sees the connection close
        raise


_COPY_BODY_BELOW = 64 * 1024


class Target:
    """One upstream base URL, parsed once: where requests go and the bytes every
    request to it starts with."""

    __slots__ = ("scheme", "host", "port", "base_path", "host_header")

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f'"{base_url}" must start with http:// or https://')
        if not parts.hostname:
            raise ValueError(f'"{base_url}" has no host')
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f'"{base_url}" must not have a query, fragment or credentials')
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f'"{base_url}" has an invalid port (1-65535)') from None
        if port == 0:
            raise ValueError(f'"{base_url}" has an invalid port (1-65535)')
        self.scheme = parts.scheme
        self.host = parts.hostname
        default = 443 if parts.scheme == "https" else 80
        self.port = port or default
        self.base_path = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default else f"{host}:{self.port}"


class UpstreamClient:
    """Keep-alive pools per host; `request()` sends one request and returns the
    answer's head once it arrives."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._tls: ssl.SSLContext | None = None
        self._watch = _ReadTimeouts()

    def _pool(self, target: Target) -> _Pool:
        key = (target.scheme, target.host, target.port)
        pool = self._pools.get(key)
        if pool is None:
            tls = None
            if target.scheme == "https":
                tls = self._tls = self._tls or ssl.create_default_context()
            pool = self._pools[key] = _Pool(asyncio.get_running_loop(), target.host, target.port, tls, self._watch)
        return pool

    async def request(
        self,
        target: Target,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | bytearray | tuple[bytes | memoryview, ...],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        lines = [f"{method} {target.base_path}{path} HTTP/1.1\r\nHost: {target.host_header}\r\n"]
        for name, value in headers:
            if "\r" not in value and "\n" not in value:
                lines.append(f"{name}: {value}\r\n")
        pieces = body.__class__ is tuple
        length = sum(map(len, body)) if pieces else len(body)
        if length or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            lines.append(f"Content-Length: {length}\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("utf-8", "surrogateescape")
        # A large body is not copied behind the head: the pieces go out in one writev.
        if pieces:
            request: tuple[bytes | bytearray | memoryview, ...] = (head, *body)
        elif length < _COPY_BODY_BELOW:
            request = (head + body,)
        else:
            request = (head, body)
        pool = self._pool(target)
        head_only = method == "HEAD"
        conn = pool.take()
        if conn is not None:
            try:
                return await _answer(conn, request, read_timeout, head_only)
            except UpstreamFailure as failure:
                if failure.started or failure.kind != "reset" or method not in _RETRYABLE or body:
                    raise
                # A pooled connection the upstream had already dropped, for a request
                # that is safe to repeat: sent once more on a new connection.
        conn = await pool.connect(connect_timeout)
        return await _answer(conn, request, read_timeout, head_only)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._watch.close()


__all__ = ["Target", "UpstreamClient", "UpstreamFailure", "UpstreamResponse"]
