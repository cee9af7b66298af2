"""The upstream HTTP/1.1 client against real local servers."""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import pytest
from aiohttp import web

from promptd.upstreams.client import Target, UpstreamClient, UpstreamFailure


class RawServers:
    """Plain asyncio servers for exact control of the bytes; `close()` ends every connection."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task] = []

    async def __call__(self, handler) -> tuple[asyncio.Server, int]:
        async def tracked(reader, writer):
            self.writers.append(writer)
            self.tasks.append(asyncio.current_task())
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        self.servers.append(server)
        return server, server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for server in self.servers:
            server.close()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


@pytest.fixture
def raw_server():
    return RawServers()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return head + await reader.readexactly(length)


async def request(client: UpstreamClient, url: str, body: bytes = b"{}", **kwargs):
    return await client.request(
        Target(url),
        "POST",
        "/chat/completions",
        [("Content-Type", "application/json")],
        body,
        connect_timeout=kwargs.pop("connect_timeout", 2),
        read_timeout=kwargs.pop("read_timeout", 2),
    )


async def test_keep_alive_connections_are_reused_and_stale_ones_replaced(raw_server):
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while True:
            try:
                raw = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            assert raw.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    server, port = await raw_server(handle)
    client = UpstreamClient()
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(5):
        response = await request(client, url)
        assert response.status == 200 and await response.read() == b"{}"
        response.release()
    assert len(connections) == 1
    connections[0].close()  # the upstream drops the idle connection
    await asyncio.sleep(0.05)
    response = await request(client, url)
    assert await response.read() == b"{}"
    assert len(connections) == 2
    client.close()
    await raw_server.close()


async def test_body_delimited_by_close_and_chunked_bodies(raw_server):
    async def handle(reader, writer):
        raw = await read_request(reader)
        if b"chunked" in raw:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end")
            await writer.drain()
            writer.close()
            return
        await writer.drain()
        await reader.read()  # until the client is done

    server, port = await raw_server(handle)
    client = UpstreamClient()
    response = await request(client, f"http://127.0.0.1:{port}/v1")
    assert response.content_type == "text/plain" and response.content_length is None
    assert await response.read() == b"until the end"
    response = await request(client, f"http://127.0.0.1:{port}/v1", body=b'{"chunked": 1}')
    assert await response.read() == b"hello world"
    client.close()
    await raw_server.close()


async def test_failures_have_kinds(raw_server):
    client = UpstreamClient()
    with pytest.raises(UpstreamFailure) as info:
        await request(client, "http://127.0.0.1:9/v1")
    assert info.value.kind == "connect" and not info.value.started

    async def silent(reader, writer):
        await read_request(reader)
        await reader.read()  # never answers

    server, port = await raw_server(silent)
    with pytest.raises(UpstreamFailure) as info:
        await request(client, f"http://127.0.0.1:{port}/v1", read_timeout=0.2)
    assert info.value.kind == "timeout"

    async def half(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.transport.abort()

    server2, port2 = await raw_server(half)
    response = await request(client, f"http://127.0.0.1:{port2}/v1")
    with pytest.raises(UpstreamFailure) as info:
        await response.read()
    assert info.value.kind == "reset" and info.value.started
    client.close()
    await raw_server.close()


async def test_slow_reader_gets_every_byte_of_a_large_body(raw_server):
    size = 5 * 1024 * 1024

    async def big(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()
        await reader.read()

    server, port = await raw_server(big)
    client = UpstreamClient()
    response = await request(client, f"http://127.0.0.1:{port}/v1")
    received = 0
    while chunk := await response.next_chunk():
        received += len(chunk)
        await asyncio.sleep(0.001)
    assert received == size
    client.close()
    await raw_server.close()


async def test_https_upstream(tmp_path, monkeypatch, aiohttp_server):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"tls": request.secure, "host": request.host})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", hello)
    server = await aiohttp_server(app, ssl=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    client = UpstreamClient()
    response = await request(client, f"https://localhost:{server.port}/v1")
    assert await response.read() == b'{"tls": true, "host": "localhost:%d"}' % server.port
    client.close()
