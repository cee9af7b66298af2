"""What a handler sees of HTTP: the request (method, target, headers, body) and
the answer it returns, whole (`Response`) or written as it goes (`StreamResponse`).

The connection (`http/protocol.py`) fills a `Request` as the parser reads it and
writes the answer; these classes hold no socket logic of their own beyond
handing their bytes to it.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from promptd.errors import BadRequest, BodyTooLarge, PromptdError

if TYPE_CHECKING:
    from promptd.http.protocol import HttpConnection

# How a streamed answer's body is framed: none (HEAD, 204, 304), as written
# (a Content-Length, or HTTP/1.0 until the connection closes), chunked.
NO_BODY, RAW, CHUNKED = 0, 1, 2


class Headers:
    """A request's headers: in arrival order with their names as sent (`items()`,
    what is forwarded), and looked up case-insensitively (the first of repeated
    names wins, as with aiohttp's CIMultiDict.get)."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        index: dict[str, str] = {}
        for name, value in items:
            index.setdefault(name.lower(), value)
        self._index = index

    def get(self, name: str, default: Any = None) -> Any:
        return self._index.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def items(self) -> list[tuple[str, str]]:
        return self._items

    def __repr__(self) -> str:  # values may be credentials
        return f"<Headers {[name for name, _ in self._items]}>"


class Request:
    """One request as it arrived. `read()` returns the body whole, decoded from
    its Content-Encoding; `path` is the target's path percent-decoded, what
    routes match; `raw_path` the target as sent (with its query)."""

    __slots__ = (
        "method",
        "raw_path",
        "headers",
        "version",
        "keep_alive",
        "match_info",
        "connection",
        "content_length",
        "_path",
        "_chunks",
        "held",
        "received",
        "complete",
        "too_large",
        "broken",
        "_arrived",
        "_continue_sent",
    )

    def __init__(
        self,
        connection: HttpConnection,
        method: str,
        raw_path: str,
        headers: Headers,
        version: str,
        keep_alive: bool,
    ) -> None:
        self.connection = connection
        self.method = method
        self.raw_path = raw_path
        self.headers = headers
        self.version = version
        self.keep_alive = keep_alive
        self.match_info: dict[str, str] = {}
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self._path: str | None = None
        self._chunks: list[bytes] = []
        # A large body's place, its announced length, filled as it arrives (instead of in pieces).
        self.held: bytearray | None = None
        self.received = 0  # bytes of the body so far
        self.complete = False  # the whole body is in
        self.too_large = False  # the body passed the limit; what came after was dropped
        self.broken: str | None = None  # the body is malformed HTTP (bad chunking): why
        self._arrived: asyncio.Future[None] | None = None
        self._continue_sent = False

    @property
    def path(self) -> str:
        path = self._path
        if path is None:
            path = self.raw_path.partition("?")[0]
            if "%" in path:
                path = unquote(path, errors="surrogateescape")
            self._path = path
        return path

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.connection.transport

    # -- filled by the connection
    def hold(self, length: int) -> memoryview:
        """Receive the rest of the body into one buffer of its announced `length`
        (the pieces so far are copied in); the part still to be filled."""
        buffer = self.held = bytearray(length)
        size = 0
        for chunk in self._chunks:
            buffer[size : size + len(chunk)] = chunk
            size += len(chunk)
        self._chunks.clear()
        return memoryview(buffer)[size:]

    def filled(self, size: int) -> None:
        """`size` more bytes of the body were received straight into the held buffer."""
        self.received += size

    def awaited(self) -> int:
        """Bytes of a held body that have not arrived yet."""
        return len(self.held) - self.received if self.held is not None else 0

    def feed(self, chunk: bytes, limit: int) -> None:
        if self.too_large:
            return
        self.received += len(chunk)
        if self.received > limit:
            self.too_large = True
            self._chunks.clear()
            arrived = self._arrived
            if arrived is not None and not arrived.done():
                arrived.set_result(None)  # the handler answers 413 now
            return
        self._chunks.append(chunk)

    def finish(self) -> None:
        self.complete = True
        arrived = self._arrived
        if arrived is not None and not arrived.done():
            arrived.set_result(None)

    # -- for handlers
    async def read(self, limit: int) -> bytes | bytearray:
        """The body, decoded from its Content-Encoding; `BodyTooLarge` beyond `limit`
        bytes (before or after decoding), `BadRequest` if it does not decode. A large
        body is the bytearray it was received into: read-only from here on."""
        if not self.complete:
            if not self._continue_sent and self.headers.get("Expect", "").lower() == "100-continue":
                self._continue_sent = True
                self.connection.write_continue()
            if self._arrived is None:
                self._arrived = asyncio.get_running_loop().create_future()
            await self._arrived
        if self.broken is not None:
            raise BadRequest(self.broken, code="malformed_request", headers={"Connection": "close"})
        if self.too_large:
            raise body_too_large(limit)
        if self.held is not None:
            raw: bytes | bytearray = self.held
        else:
            chunks = self._chunks
            raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = self.headers.get("Content-Encoding")
        if encoding is not None:
            raw = decompress(raw, encoding, limit)
        return raw


def body_too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body is larger than max_body_bytes ({limit} bytes)", code="body_too_large")


def _inflate(raw: bytes, limit: int, wbits: int) -> bytes:
    """gzip (wbits 47: gzip or zlib framing) or deflate, stopped past `limit`."""
    decoder = zlib.decompressobj(wbits=wbits)
    out = decoder.decompress(raw, limit + 1)
    if len(out) > limit:
        raise body_too_large(limit)
    out += decoder.flush()
    if not decoder.eof:
        raise zlib.error("truncated")
    return out


def _brotli(raw: bytes, limit: int) -> bytes:
    import brotli  # optional: a br body gets a 400 without it

    return brotli.decompress(raw)


def _zstd(raw: bytes, limit: int) -> bytes:
    import zstandard  # optional: a zstd body gets a 400 without it

    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


# Request Content-Encodings promptd decodes (brotli and zstd when their modules are
# installed); a body in another encoding is forwarded as it came, with its header.
DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": functools.partial(_inflate, wbits=47),
    "x-gzip": functools.partial(_inflate, wbits=47),
    "deflate": functools.partial(_inflate, wbits=15),
    "br": _brotli,
    "zstd": _zstd,
}


def decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    decode = DECODERS.get(encoding)
    if decode is None:
        return raw
    try:
        out = decode(raw, limit)
    except PromptdError:
        raise
    except Exception:  # zlib.error, brotli.error, zstandard.ZstdError, a missing module
        raise BadRequest(
            f"request body does not decode as Content-Encoding: {encoding[:32]}",
            code="invalid_json",
            headers={"Connection": "close"},
        ) from None
    if len(out) > limit:
        raise body_too_large(limit)
    return out


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """An answer's headers as a new list of (name, value)."""
    if headers.__class__ is dict:
        return list(headers.items())  # type: ignore[union-attr]
    if headers.__class__ is list:
        return headers.copy()  # type: ignore[union-attr]
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers or ())


class Response:
    """A whole answer: status, headers and a body of known length."""

    __slots__ = ("status", "reason", "headers", "body", "keep_alive")

    prepared = False

    def __init__(
        self,
        *,
        body: bytes = b"",
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        pairs = _pairs(headers)
        if content_type is not None:
            pairs.append(("Content-Type", content_type))
        self.headers = pairs
        self.body = body
        self.keep_alive = True

    @property
    def content_length(self) -> int:
        return len(self.body)

    def force_close(self) -> None:
        """Close the connection once this answer is written."""
        self.keep_alive = False


class StreamResponse:
    """An answer written as it arrives: `prepare()` sends the head, `write()` each
    piece (chunked, or as is with a `content_length`), `write_eof()` ends it.
    A write to a client that has gone raises ConnectionResetError."""

    __slots__ = ("status", "reason", "headers", "content_length", "keep_alive", "prepared", "_connection", "_mode")

    def __init__(
        self,
        *,
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = _pairs(headers)
        self.content_length: int | None = None
        self.keep_alive = True
        self.prepared = False
        self._connection: HttpConnection | None = None
        self._mode = NO_BODY

    def force_close(self) -> None:
        self.keep_alive = False

    async def prepare(self, request: Request) -> None:
        connection = request.connection
        self._connection = connection
        self._mode = connection.start_stream(request, self)
        self.prepared = True

    async def write(self, data: bytes) -> None:
        connection = self._connection
        assert connection is not None, "prepare() first"
        mode = self._mode
        if mode == CHUNKED:
            if not data:
                return
            connection.write_all((b"%x\r\n" % len(data), data, b"\r\n"))
        elif mode == RAW:
            connection.write_all((data,))
        if connection.writing_paused:
            await connection.drained()

    async def write_eof(self) -> None:
        connection = self._connection
        assert connection is not None, "prepare() first"
        if self._mode == CHUNKED:
            connection.write_all((b"0\r\n\r\n",))
        self._mode = NO_BODY
        if connection.writing_paused:
            await connection.drained()
