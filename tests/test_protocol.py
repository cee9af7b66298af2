"""promptd's HTTP/1.1 server (`http/protocol.py`) as a client sees it on the wire:
raw sockets against the real app in front of the recording upstream."""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import re

import orjson
import pytest

from promptd.http import protocol
from promptd.http.protocol import HELD_FROM, MAX_FIELD, MAX_TARGET

CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
# A body large enough to be received into one buffer of its announced length.
LARGE = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 'x \\ "y" ' * 40_000}]})


class Wire:
    """A raw connection: write bytes, read whole answers (Content-Length or chunked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, client) -> Wire:
        return cls(*await asyncio.open_connection("127.0.0.1", client.server.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(5):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if head_only or status in (100, 204, 304):
                return status, headers, b""
            if headers.get("transfer-encoding") == "chunked":
                body = b""
                while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                    body += await self.reader.readexactly(size)
                    await self.reader.readexactly(2)
                await self.reader.readexactly(2)
                return status, headers, body
            if "content-length" in headers:
                return status, headers, await self.reader.readexactly(int(headers["content-length"]))
            return status, headers, await self.reader.read()  # delimited by the close

    async def closed(self) -> bool:
        try:
            async with asyncio.timeout(5):
                return await self.reader.read(1) == b""
        except (TimeoutError, ConnectionResetError):
            return False

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


@pytest.fixture
async def connect():
    """`await connect(client)` -> a Wire to the gateway, closed after the test."""
    opened: list[Wire] = []

    async def open_wire(client) -> Wire:
        opened.append(await Wire.open(client))
        return opened[-1]

    yield open_wire
    for wire in opened:
        await wire.close()


def post(path: str, body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{header}\r\n" for header in headers)
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_serves_several_requests_on_one_connection(make_gateway, upstream, connect):
    client = await make_gateway()
    wire = await connect(client)
    for _ in range(3):
        await wire.send(post("/v1/chat/completions", CHAT, "Content-Type: application/json"))
        status, headers, body = await wire.answer()
        assert status == 200 and orjson.loads(body)["choices"][0]["message"]["content"] == "hello"
        assert "connection" not in headers and re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT", headers["date"])
    assert len(upstream.requests) == 3


async def test_pipelined_requests_are_answered_in_order(make_gateway, upstream, connect):
    client = await make_gateway()
    wire = await connect(client)
    upstream.behaviour = "stream"
    stream = orjson.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True})
    await wire.send(
        post("/v1/chat/completions", stream)
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        + post("/v1/chat/completions", CHAT)
    )
    status, headers, body = await wire.answer()
    assert status == 200 and headers["transfer-encoding"] == "chunked" and body.endswith(b"data: [DONE]\n\n")
    status, _, body = await wire.answer()
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    status, _, body = await wire.answer()
    assert status == 200 and b"part0" in body  # the recorder still streams
    assert [r["body"].get("stream") for r in upstream.requests] == [True, None]


async def test_http_1_0_gets_a_close_delimited_stream_and_a_close(make_gateway, upstream, connect):
    client = await make_gateway()
    upstream.behaviour = "stream"
    wire = await connect(client)
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True})
    await wire.send(f"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    status, headers, data = await wire.answer()
    assert status == 200 and "transfer-encoding" not in headers and headers["connection"] == "close"
    assert data.startswith(b"data: ") and data.endswith(b"data: [DONE]\n\n")


async def test_expect_100_continue_is_answered_when_the_body_is_wanted(make_gateway, upstream, connect):
    client = await make_gateway(auth='api_keys = "env:KEYS"', env={"KEYS": "pk-1"})
    wire = await connect(client)
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(CHAT)}\r\nExpect: 100-continue\r\n"
    await wire.send((head + "Authorization: Bearer pk-1\r\n\r\n").encode())
    status, _, _ = await wire.answer()
    assert status == 100
    await wire.send(CHAT)
    status, _, body = await wire.answer()
    assert (
        status == 200 and upstream.last["raw"] == CHAT and "expect" not in {k.lower() for k in upstream.last["headers"]}
    )
    # A wrong key: refused at once, no 100 Continue; the body never sent, the connection closes.
    await wire.send((head + "Authorization: Bearer nope\r\n\r\n").encode())
    status, _, body = await wire.answer()
    assert status == 401 and orjson.loads(body)["error"]["code"] == "unauthorized"
    assert len(upstream.requests) == 1


async def test_head_gets_the_headers_of_get_and_no_body(make_gateway, connect):
    client = await make_gateway()
    wire = await connect(client)
    await wire.send(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await wire.answer(head_only=True)
    assert status == 200 and headers["content-length"] == str(len(b'{"status":"ok"}'))
    status, _, body = await wire.answer()  # the next answer starts right after the head: no body was sent
    assert status == 200 and body == b'{"status":"ok"}'


async def test_a_too_large_body_gets_413_and_the_client_reads_it(make_gateway, upstream, connect):
    client = await make_gateway(server="max_body_bytes = 1000")
    wire = await connect(client)
    await wire.send(post("/v1/chat/completions", b"x" * 200_000))
    status, headers, body = await wire.answer()
    assert status == 413 and orjson.loads(body)["error"]["code"] == "body_too_large"
    assert headers["connection"] == "close" and await wire.closed()
    # A chunked body that grows past the limit, and a gzip body that expands past it.
    wire = await connect(client)
    chunks = b"".join(b"%x\r\n%s\r\n" % (600, b"y" * 600) for _ in range(3)) + b"0\r\n\r\n"
    await wire.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert (await wire.answer())[0] == 413
    wire = await connect(client)
    await wire.send(post("/v1/chat/completions", gzip.compress(b" " * 50_000 + CHAT), "Content-Encoding: gzip"))
    assert (await wire.answer())[0] == 413
    assert upstream.requests == []


async def test_a_chunked_body_is_forwarded_whole(make_gateway, upstream, connect):
    client = await make_gateway()
    wire = await connect(client)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (CHAT[:10], CHAT[10:])) + b"0\r\n\r\n"
    await wire.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    assert (await wire.answer())[0] == 200
    assert upstream.last["raw"] == CHAT


async def test_broken_http_gets_400_malformed_request_and_a_close(make_gateway, upstream, connect):
    client = await make_gateway()
    cases = [
        b"GET /" + b"a" * MAX_TARGET + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (MAX_FIELD + 1) + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ]
    for data in cases:
        wire = await connect(client)
        await wire.send(data)
        status, headers, body = await wire.answer()
        assert status == 400 and headers["connection"] == "close", data[:40]
        assert orjson.loads(body)["error"]["code"] == "malformed_request"
        assert await wire.closed()
    assert upstream.requests == []


async def test_a_good_request_before_a_broken_one_is_answered_first(make_gateway, upstream, connect):
    client = await make_gateway()
    wire = await connect(client)
    await wire.send(post("/v1/chat/completions", CHAT) + b"\x00\x01garbage\r\n\r\n")
    assert (await wire.answer())[0] == 200
    status, _, body = await wire.answer()
    assert status == 400 and b"malformed_request" in body and await wire.closed()
    assert len(upstream.requests) == 1


async def test_an_upgrade_is_not_offered_the_request_is_answered_and_closed(make_gateway, connect):
    client = await make_gateway()
    wire = await connect(client)
    await wire.send(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    )
    status, headers, body = await wire.answer()
    assert status == 200 and body == b'{"status":"ok"}' and headers["connection"] == "close"
    assert await wire.closed()


async def test_percent_encoded_paths_route_like_their_decoded_form(make_gateway):
    client = await make_gateway()
    response = await client.get("/v1/prompts/sup%70ort")
    assert response.status == 200 and (await response.json())["id"] == "support"
    response = await client.get("/v1/prompts/support/versions/%32")
    assert response.status == 200 and (await response.json())["version"] == 2


async def test_idle_connections_close_when_the_server_drains(make_gateway, connect):
    client = await make_gateway()
    wire = await connect(client)
    await wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await wire.answer())[0] == 200
    await client.server.close()
    assert await wire.closed()


def held(client) -> int:
    """Bytes the server holds for large bodies announced but not yet arrived."""
    return client.server.listener.connections.held


async def gone(client, timeout: float = 5) -> None:
    """Wait until the server has seen every client connection close."""
    async with asyncio.timeout(timeout):
        while client.server.listener.connections.open:
            await asyncio.sleep(0.01)


async def test_large_bodies_arrive_whole_however_the_bytes_are_cut(make_gateway, upstream, connect):
    """A large body is read straight into its buffer: in one write with the next
    request behind it, and in writes whose cuts fall anywhere."""
    assert len(LARGE) > 4 * HELD_FROM
    client = await make_gateway()
    wire = await connect(client)
    pipelined = post("/v1/chat/completions", LARGE) + post("/v1/chat/completions", CHAT)
    await wire.send(pipelined + post("/v1/chat/completions", LARGE))
    for _ in range(3):
        assert (await wire.answer())[0] == 200
    for cut in (7001, 65536 + 3):
        for start in range(0, len(pipelined), cut):
            await wire.send(pipelined[start : start + cut])
            await asyncio.sleep(0)
        assert (await wire.answer())[0] == 200 and (await wire.answer())[0] == 200
    assert [r["raw"] for r in upstream.requests] == [LARGE, CHAT, LARGE, LARGE, CHAT, LARGE, CHAT]
    assert held(client) == 0


async def test_a_large_gzip_body_and_a_large_body_behind_100_continue(make_gateway, upstream, connect):
    text = base64.b64encode(os.urandom(300_000)).decode()  # does not compress below HELD_FROM
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
    packed = gzip.compress(body)
    assert len(packed) > HELD_FROM
    client = await make_gateway()
    wire = await connect(client)
    await wire.send(post("/v1/chat/completions", packed, "Content-Encoding: gzip"))
    assert (await wire.answer())[0] == 200
    assert upstream.last["raw"] == body and "content-encoding" not in {k.lower() for k in upstream.last["headers"]}
    head = post("/v1/chat/completions", b"", "Expect: 100-continue")  # the head alone, then the body
    await wire.send(head.replace(b"Content-Length: 0", b"Content-Length: %d" % len(LARGE)))
    assert (await wire.answer())[0] == 100
    await wire.send(LARGE)
    assert (await wire.answer())[0] == 200 and upstream.last["raw"] == LARGE


async def test_a_large_body_cut_short_by_the_client_releases_what_it_held(make_gateway, upstream, connect):
    client = await make_gateway()
    wire = await connect(client)
    await wire.send(post("/v1/chat/completions", LARGE)[: len(LARGE) // 3])
    async with asyncio.timeout(5):
        while not held(client):
            await asyncio.sleep(0.01)
    await wire.close()
    await gone(client)
    assert held(client) == 0 and upstream.requests == []
    wire = await connect(client)
    await wire.send(post("/v1/chat/completions", LARGE))
    assert (await wire.answer())[0] == 200 and upstream.last["raw"] == LARGE


async def test_past_the_held_budget_large_bodies_come_in_pieces(make_gateway, upstream, connect, monkeypatch):
    """Memory for bodies announced but not sent is bounded: a body past the budget
    is received piece by piece, as it arrives, and reaches the upstream the same."""
    monkeypatch.setattr(protocol, "HELD_BUDGET", len(LARGE) + 1000)
    client = await make_gateway()
    first, second = await connect(client), await connect(client)
    request = post("/v1/chat/completions", LARGE)
    await first.send(request[:1000])
    async with asyncio.timeout(5):
        while not held(client):
            await asyncio.sleep(0.01)
    awaited = held(client)
    await second.send(request)  # past the budget: not held
    assert (await second.answer())[0] == 200 and upstream.last["raw"] == LARGE
    assert held(client) == awaited
    await first.send(request[1000:])
    assert (await first.answer())[0] == 200 and upstream.last["raw"] == LARGE
    assert held(client) == 0


async def test_a_large_body_refused_before_it_is_read_is_drained_then_closed(make_gateway, upstream, connect):
    client = await make_gateway(auth='api_keys = "env:KEYS"', env={"KEYS": "pk-1"})
    wire = await connect(client)
    request = post("/v1/chat/completions", LARGE, "Authorization: Bearer nope")
    await wire.send(request[:2000])
    status, headers, body = await wire.answer()  # refused from its head: the body is not waited for
    assert status == 401 and headers["connection"] == "close"
    await wire.send(request[2000:])  # what the client still sends is read and dropped, then the close
    assert await wire.closed()
    await wire.close()
    # A client waiting for 100 Continue has sent nothing of its body: nothing is held for it.
    wire = await connect(client)
    await wire.send(request[: request.index(b"\r\n\r\n")] + b"\r\nExpect: 100-continue\r\n\r\n")
    await asyncio.sleep(0.05)
    assert held(client) == 0
    status, headers, _ = await wire.answer()
    assert status == 401 and headers["connection"] == "close"
    await wire.close()  # as the client does on `Connection: close` (the server would wait LINGER_S for a body)
    await gone(client)
    assert held(client) == 0 and upstream.requests == []


async def test_requests_pipelined_behind_a_closing_answer_see_the_answer_then_the_end(make_gateway, upstream, connect):
    """The answer that closes the connection is followed by the end of the stream,
    not a reset, though the client had already sent more (a reset can destroy an
    answer the client has not read yet)."""
    client = await make_gateway(auth='api_keys = "env:KEYS"', env={"KEYS": "pk-1"})
    healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    wire = await connect(client)
    # Refused before its large body was read: the body is drained, the rest dropped.
    await wire.send(post("/v1/chat/completions", LARGE, "Authorization: Bearer nope") + healthz + healthz)
    status, headers, _ = await wire.answer()
    assert status == 401 and headers["connection"] == "close"
    assert await wire.closed()  # the end of the stream, not ConnectionResetError
    await wire.close()
    await gone(client)  # the server closes once the client has
    assert upstream.requests == []
