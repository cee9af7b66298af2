"""The floor: the simplest useful forwarder, aiohttp + uvloop, no parsing.

    python -m benchmarks.baseline_forwarder --port 9200 --upstream http://127.0.0.1:9100
    python -m benchmarks.baseline_forwarder --port 9200 --processes 2

One ClientSession; the request body goes upstream as it is; the answer comes
back whole, or chunk by chunk when it is an event stream. `--processes N`: N
processes serve one listening socket, bound by this one, as promptd's
`--workers N` do (the benchmark's control for what several processes cost).
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys

import aiohttp
import uvloop
from aiohttp import web


def make_app(upstream: str) -> web.Application:
    async def session_ctx(app: web.Application):
        app["session"] = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=0))
        yield
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        async with request.app["session"].request(
            request.method, upstream + request.raw_path, data=body, headers=headers
        ) as resp:
            if resp.content_type != "text/event-stream":
                return web.Response(body=await resp.read(), status=resp.status, content_type=resp.content_type)
            out = web.StreamResponse(status=resp.status, headers={"Content-Type": "text/event-stream"})
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--upstream", default="http://127.0.0.1:9100")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a process of --processes: the shared socket
    args = parser.parse_args()
    if args.processes > 1:
        supervise(args)
        return
    uvloop.install()
    web.run_app(
        make_app(args.upstream),
        sock=socket.socket(fileno=args.fd) if args.fd is not None else None,
        host=None if args.fd is not None else "127.0.0.1",
        port=None if args.fd is not None else args.port,
        access_log=None,
        print=None,
        handler_cancellation=True,
    )


def supervise(args: argparse.Namespace) -> None:
    """Bind the socket, start the serving processes on it, stop them on SIGTERM."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    argv = [sys.executable, "-m", "benchmarks.baseline_forwarder", "--upstream", args.upstream]
    children = [
        subprocess.Popen([*argv, "--fd", str(sock.fileno())], pass_fds=(sock.fileno(),)) for _ in range(args.processes)
    ]
    signal.signal(signal.SIGTERM, lambda *_: [child.terminate() for child in children])
    for child in children:
        child.wait()


if __name__ == "__main__":
    main()
