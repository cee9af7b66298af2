"""What the fault and hostile-input probe found, each reproduced against a real
misbehaving upstream (raw sockets) or a raw-socket client."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import struct
import time

import msgspec
import orjson
import pytest
from conftest import SUPPORT, LogSink, write_config

from promptd.app import create_app
from promptd.http.listener import LISTEN_BACKLOG, start_listening
from promptd.ops.logs import AccessLog
from promptd.ops.metrics import Metrics
from promptd.server import bind_socket
from promptd.settings import load_settings
from promptd.upstreams.client import HEADER_LIMIT

VARS = {"name": "Sam", "issue": "billing"}


class RawUpstream:
    """A TCP server that speaks whatever `answer(reader, writer, index)` writes;
    it counts connections and the requests read on them."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> RawUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                keep = await self.answer(reader, writer, len(self.requests) - 1, body)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


@pytest.fixture
async def raw_gateway(gateway_client, tmp_path):
    """`await raw_gateway(answer, **write_config kwargs)` -> (client, raw upstream)."""
    made = []

    async def make(answer, env=None, **kwargs):
        raw = await RawUpstream(answer).start()
        made.append(raw)
        config = write_config(tmp_path / f"config{len(made)}", upstream_url=raw.url, **kwargs)
        access_log = AccessLog(stream=LogSink())
        access_log.enabled = True
        app = create_app(load_settings(config, environ=env or {}), metrics=Metrics(), access_log=access_log)
        return await gateway_client(app), raw

    yield make
    for raw in made:
        await raw.close()


async def chat(client, body, **kwargs):
    return await client.post("/v1/chat/completions", data=orjson.dumps(body), **kwargs)


# -- 1. crossed responses ------------------------------------------------------------


@pytest.mark.parametrize(
    "interim",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"],
)
async def test_interim_answers_never_cross_responses(raw_gateway, interim):
    async def answer(reader, writer, index, body):
        writer.write(interim)
        await writer.drain()
        await asyncio.sleep(0.05)  # the real answer comes later
        user = orjson.loads(body)["user"]
        writer.write(ok(orjson.dumps({"answer_for": user})))
        return True

    client, raw = await raw_gateway(answer)
    for user in ("alice", "bob", "carol"):
        response = await asyncio.wait_for(chat(client, {"model": "gpt-4o-mini", "messages": [], "user": user}), 5)
        assert response.status == 200
        assert (await response.json()) == {"answer_for": user}
    assert raw.connections == 1  # the connection was reused, after each answer was read whole


# -- 4. duplicate POSTs -----------------------------------------------------------------


async def test_a_request_the_upstream_may_have_read_is_never_sent_again(raw_gateway):
    async def answer(reader, writer, index, body):
        if index == 0:
            writer.write(ok(b"{}"))
            return True
        return False  # read the second request, then close without answering

    client, raw = await raw_gateway(answer)
    assert (await chat(client, {"model": "gpt-4o-mini", "messages": []})).status == 200
    response = await chat(client, {"model": "gpt-4o-mini", "messages": [], "n": 2})
    assert response.status == 502
    assert (await response.json())["error"]["code"] == "upstream_unreachable"
    await asyncio.sleep(0.1)
    assert len(raw.requests) == 2, "the POST reached the upstream twice"


async def test_a_pooled_connection_closed_while_idle_is_not_reused(raw_gateway):
    async def answer(reader, writer, index, body):
        writer.write(ok(b"{}"))
        return False  # answers, then closes the kept-alive connection

    client, raw = await raw_gateway(answer)
    for _ in range(3):
        assert (await chat(client, {"model": "gpt-4o-mini", "messages": []})).status == 200
        await asyncio.sleep(0.05)  # promptd sees the close before the next request
    assert len(raw.requests) == 3 and raw.connections == 3


# -- 18. response header size ----------------------------------------------------------------


async def test_a_huge_response_header_block_is_refused(raw_gateway):
    async def answer(reader, writer, index, body):
        header = b"X-Big: " + b"a" * 8000 + b"\r\n"
        writer.write(b"HTTP/1.1 200 OK\r\n" + header * (HEADER_LIMIT // 8000 + 2) + b"Content-Length: 2\r\n\r\n{}")
        return False

    client, raw = await raw_gateway(answer)
    response = await chat(client, {"model": "gpt-4o-mini", "messages": []})
    assert response.status == 502
    assert "headers exceed" in (await response.json())["error"]["message"]


# -- 13. the read timeout measures upstream silence only -------------------------------------


async def test_a_slow_reader_is_not_cut_off_by_the_read_timeout(raw_gateway, gateway_client):
    payload = b"x" * (32 * 1024 * 1024)  # more than every socket buffer on the way holds

    async def answer(reader, writer, index, body):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        return True

    client, raw = await raw_gateway(answer, read_timeout=0.3)
    response = await chat(client, {"model": "gpt-4o-mini", "messages": []})
    assert response.status == 200
    received = len(await response.content.readexactly(1024))
    await asyncio.sleep(1.5)  # the client stops reading: promptd stops reading the upstream
    received += len(await response.content.read())
    assert received == len(payload)


# -- 10, 11. client input that once gave 500 or an empty 200 -------------------------------


async def test_hostile_bodies_get_4xx(make_gateway, upstream):
    client = await make_gateway()
    deep = b'{"prompt_id": "support", "prompt_variables": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for data, headers, code in [
        (b'{"prompt":{}}', {}, "invalid_prompt_fields"),
        (deep, {}, "invalid_json"),
        (b'{"model": "gpt-4o-mini", "messages": []}', {"Content-Encoding": "gzip"}, "invalid_json"),
        (b"[1, 2]", {}, "invalid_json"),
    ]:
        response = await client.post("/v1/chat/completions", data=data, headers=headers)
        assert response.status == 400, (data[:40], await response.text())
        assert (await response.json())["error"]["code"] == code
    assert not upstream.requests


async def test_deeply_nested_messages_on_an_echo_stream_are_answered_whole(make_gateway):
    client = await make_gateway()
    nested: object = "x"
    for _ in range(299):
        nested = [nested]
    body = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": nested}]}
    response = await client.post("/v1/chat/completions", data=msgspec.json.encode(body))  # orjson stops at 255
    assert response.status == 200
    text = await response.text()
    assert text.endswith("data: [DONE]\n\n") and text.count("data: ") > 3


async def test_compressed_bodies_are_forwarded_decoded_without_the_header(make_gateway, upstream):
    client = await make_gateway()
    raw = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    response = await client.post("/v1/chat/completions", data=gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert response.status == 200
    assert upstream.last["raw"] == raw
    assert "Content-Encoding" not in upstream.last["headers"]
    response = await client.post(
        "/v1/chat/completions",
        data=gzip.compress(orjson.dumps({"prompt_id": "support", "prompt_variables": VARS})),
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status == 200 and upstream.last["body"]["model"] == "gpt-4o-mini"


async def test_integers_beyond_64_bits_stay_exact(make_gateway, upstream):
    client = await make_gateway()
    seed = 2**70 + 1
    raw = b'{"prompt_id": "support", "prompt_variables": {"name": "a", "issue": "billing"}, "seed": %d}' % seed
    response = await client.post("/v1/chat/completions", data=raw)
    assert response.status == 200
    assert b'"seed":%d' % seed in upstream.last["raw"]


# -- 12. routing ----------------------------------------------------------------------------------


async def _raw_http(port: int, data: bytes, timeout: float = 5) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(timeout):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "target",
    [
        b"/v1/../../x",
        b"/v1/%2e%2e/admin",
        b"/v1/models/./x",
        b"http://evil.example/v1/models",
    ],
)
async def test_paths_that_could_escape_the_base_url_are_refused(make_gateway, upstream, target):
    client = await make_gateway(api_key="env:UP", env={"UP": "sk-upstream"})
    port = client.server.port
    answer = await _raw_http(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 404), answer[:200]
    assert not upstream.requests


@pytest.mark.parametrize("path", ["/v1/chat/completions/", "/v1//chat/completions", "/v1/completions"])
async def test_prompt_fields_are_never_forwarded_raw(make_gateway, upstream, path):
    client = await make_gateway()
    response = await client.post(path, data=orjson.dumps({"prompt_id": "support", "prompt_variables": VARS}))
    assert response.status == 400
    assert (await response.json())["error"]["code"] in ("invalid_prompt_fields", "invalid_path")
    assert not upstream.requests


# -- 15. header hygiene ------------------------------------------------------------------------------


async def test_connection_named_headers_and_credentials_stay_here(make_gateway, upstream):
    client = await make_gateway(auth='api_keys = "env:KEYS"', api_key="env:UP", env={"KEYS": "pk-1", "UP": "sk-up"})
    response = await chat(
        client,
        {"model": "gpt-4o-mini", "messages": []},
        headers={
            "Authorization": "Bearer pk-1",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret-hop",
            "X-Api-Key": "pk-1",
            "Api-Key": "pk-1",
            "Cookie": "session=pk-1",
            "X-Kept": "yes",
        },
    )
    assert response.status == 200
    seen = {name.lower(): value for name, value in upstream.last["header_list"]}
    assert seen["x-kept"] == "yes" and seen["authorization"] == "Bearer sk-up"
    for name in ("x-hop", "x-api-key", "api-key", "cookie"):
        assert name not in seen, name
    assert "pk-1" not in repr(upstream.last["header_list"])


# -- 3. client timeouts -------------------------------------------------------------------------------------


@pytest.fixture
async def listening(tmp_path):
    """promptd listening on a real socket with short client timeouts."""
    config = write_config(
        tmp_path, {"support.toml": SUPPORT}, server="client_timeout_s = 0.4\nkeepalive_timeout_s = 0.6"
    )
    settings = load_settings(config, environ={})
    sock = bind_socket("127.0.0.1", 0)
    listener = await start_listening(create_app(settings, access_log=AccessLog(stream=LogSink())), settings, sock)
    yield sock.getsockname()[1]
    await listener.drain(0)


async def _closed_within(port: int, send: bytes, seconds: float) -> tuple[bool, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if send:
        writer.write(send)
        await writer.drain()
    started = time.monotonic()
    data = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        return False, data
    finally:
        writer.close()
    return time.monotonic() - started < seconds, data


@pytest.mark.parametrize("send", [b"", b"GET /hea", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"])
async def test_a_request_that_does_not_arrive_in_time_is_closed(listening, send):
    closed, _ = await _closed_within(listening, send, 3)
    assert closed


async def test_a_stalled_body_gets_408_and_is_closed(listening):
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    closed, data = await _closed_within(listening, head, 3)
    assert closed and data.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in data


async def test_an_idle_keep_alive_connection_is_closed(listening):
    closed, data = await _closed_within(listening, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 3)
    assert closed and data.startswith(b"HTTP/1.1 200")


async def test_a_slow_but_steady_client_within_the_limit_is_served(listening):
    reader, writer = await asyncio.open_connection("127.0.0.1", listening)
    for piece in (b"GET /heal", b"thz HTTP/1.1\r\n", b"Host: x\r\n\r\n"):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.1)
    data = await asyncio.wait_for(reader.read(65536), 3)
    writer.close()
    assert data.startswith(b"HTTP/1.1 200")


def test_the_listen_backlog_is_not_reset_to_128():
    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with open("/proc/sys/net/core/somaxconn") as f:
            expected = min(LISTEN_BACKLOG, int(f.read()))
        # ss shows a listening socket's backlog as Send-Q; read it from /proc instead of a tool
        found = _listen_backlog(port)
        assert found == expected
    finally:
        sock.close()


def _listen_backlog(port: int) -> int:
    """The backlog of the listening socket on `port`, via the sock_diag netlink interface."""
    import struct

    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
    try:
        # inet_diag_req_v2 for TCP, state LISTEN, matched on the source port below
        req = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << 10)
        req += (
            struct.pack("!HH", port, 0) + b"\0" * 32 + struct.pack("=I", 0) + struct.pack("=II", 0xFFFFFFFF, 0xFFFFFFFF)
        )
        header = struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0)  # SOCK_DIAG_BY_FAMILY, REQUEST|DUMP
        nl.send(header + req)
        while True:
            data = nl.recv(65536)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == 3:  # NLMSG_DONE
                    raise AssertionError(f"no listening socket on port {port}")
                msg = data[offset + 16 : offset + length]
                sport = struct.unpack_from("!H", msg, 4)[0]
                if sport == port:
                    # inet_diag_msg: family, state, timer, retrans, id (48 bytes), expires, rqueue, wqueue
                    _rqueue, wqueue = struct.unpack_from("=II", msg, 4 + 48 + 4)
                    return wqueue
                offset += (length + 3) & ~3
    finally:
        nl.close()


# -- 9. SIGTERM's grace ---------------------------------------------------------------------------------


async def test_after_the_grace_open_streams_get_a_final_event(tmp_path, upstream):
    upstream.behaviour = "gated_stream"  # never finishes by itself
    config = write_config(tmp_path, {"support.toml": SUPPORT}, upstream_url=upstream.url, read_timeout=30)
    settings = load_settings(config, environ={})
    sock = bind_socket("127.0.0.1", 0)
    listener = await start_listening(create_app(settings, access_log=AccessLog(stream=LogSink())), settings, sock)
    port = sock.getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True})
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    data = b""
    while b"part1" not in data:
        data += await asyncio.wait_for(reader.read(65536), 5)
    started = time.monotonic()
    await listener.drain(0.5)
    took = time.monotonic() - started
    async with asyncio.timeout(3):
        while chunk := await reader.read(65536):
            data += chunk
    writer.close()
    assert 0.5 <= took < 2.0, took
    assert b'"code":"shutting_down"' in data
    # and no new connection is accepted any more
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)


# -- 5, 6, 7. logs ------------------------------------------------------------------------------------------


async def test_malformed_requests_are_refused_without_logging_their_bytes(listening, capfd):
    import logging

    from promptd.ops.logs import setup_logging

    setup_logging("info")
    try:
        for request in (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-secret-1\x01\r\n\r\n",
            b"GET /v1/models?api_key=sk-secret-2" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            answer = await _raw_http(listening, request)
            assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
            assert b"sk-secret" not in answer.split(b"\r\n\r\n", 1)[1]
        await asyncio.sleep(0.2)
        from promptd.ops.logs import log_writer

        log_writer().wait_written(2)
    finally:
        logging.getLogger().handlers[:] = []
    err = capfd.readouterr().err
    assert "malformed HTTP request refused" in err
    assert "sk-secret" not in err and "Traceback" not in err


def test_a_stuck_log_sink_drops_and_counts_lines_instead_of_blocking():
    from promptd.ops.logs import LogWriter

    read_end, write_end = os.pipe()  # nobody reads: the pipe fills after 64 KiB
    stuck = os.fdopen(write_end, "wb")
    try:
        writer = LogWriter(stuck, limit=256 * 1024)
        dropped: list[int] = []
        writer.on_drop = dropped.append
        started = time.monotonic()
        for _ in range(5000):
            writer.write_lines([b'{"msg": "' + b"x" * 200 + b'"}'])
        assert time.monotonic() - started < 1.0  # the caller never waited for the sink
        assert writer.dropped > 0 and sum(dropped) == writer.dropped
    finally:
        os.close(read_end)  # the writer thread's blocked write fails, and it goes on
        assert writer.wait_written(5)
        stuck.close()


def test_a_line_that_cannot_be_encoded_is_escaped_not_lost():
    sink = LogSink()
    log = AccessLog(stream=sink)

    async def record():
        log.record("good", "GET", "/a", 200, "x", None, None, None, None, None, 0.0, 0.0, None, 0, None)
        log.record("bad\udcff", "GET", "/b\udcfe", 200, "x", None, None, None, None, None, 0.0, 0.0, None, 0, None)
        log.flush()

    asyncio.run(record())
    lines = [orjson.loads(line) for line in sink.data.splitlines()]
    assert [line["request_id"] for line in lines] == ["good", "bad\\udcff"]


async def test_client_strings_are_clipped_and_printable(make_gateway, upstream):
    client = await make_gateway()
    response = await client.get("/v1/prompts/nope", headers={"X-Request-Id": "id-" + "é" * 10 + "z" * 1000})
    assert response.status == 404
    echoed = response.headers["x-request-id"]
    assert len(echoed) == 128 and echoed.startswith("id-??????????zz") and echoed.isascii()


# -- 14. a client that leaves mid-stream ---------------------------------------------------------------------


async def test_a_client_leaving_mid_stream_is_a_499_at_info(make_gateway, upstream, caplog):
    upstream.behaviour = "gated_stream"
    client = await make_gateway(read_timeout=10)
    for _ in range(3):
        upstream.gate.clear()
        response = await chat(client, {"model": "gpt-4o-mini", "messages": [], "stream": True})
        assert b"part0" in await response.content.readany()
        response.close()  # the client goes away while the stream is open
        await asyncio.sleep(0.1)
        upstream.gate.set()  # the upstream goes on writing into a closed client
        await asyncio.sleep(0.2)
    client.server.app.state.access_log.flush()
    statuses = [line["status"] for line in client.access_log.lines() if line["endpoint"] == "chat_completions"]
    assert statuses == [499, 499, 499]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    metrics = await (await client.get("/metrics")).text()
    assert 'status="499"' in metrics and 'endpoint="chat_completions",prompt_id="none",status="200"' not in metrics


async def test_a_client_resetting_a_fast_stream_is_a_499_not_an_error(raw_gateway, caplog):
    async def answer(reader, writer, index, body):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        event = b'data: {"choices":[{"delta":{"content":"' + b"x" * 200 + b'"}}]}\n\n'
        try:
            for _ in range(20000):
                writer.write(b"%x\r\n" % len(event) + event + b"\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        return False

    client, raw = await raw_gateway(answer, read_timeout=10)
    port = client.server.port
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True})
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await reader.read(4096)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # a reset, in the middle of a fast stream
        await asyncio.sleep(0.3)
    client.server.app.state.access_log.flush()
    lines = [orjson.loads(line) for line in client.server.app.state.access_log._writer._stream.data.splitlines()]
    assert [line["status"] for line in lines] == [499] * 5
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
