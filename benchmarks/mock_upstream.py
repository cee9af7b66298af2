"""A fast OpenAI-compatible upstream for load tests, on 127.0.0.1.

    python -m benchmarks.mock_upstream --port 9100 [--delay-ms 0] [--chunk-delay-ms 0] [--chunks 8]

POST .../chat/completions answers a `chat.completion` (with `usage`, unless the request has
`X-Mock-Usage: off`: then the same object sits under `tally`, a key of the same length), or with `"stream": true` `--chunks` SSE chunks then `data: [DONE]`.
Anything else gets a small JSON body.
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
import uvloop
from aiohttp import web

_COMPLETION = {
    "id": "chatcmpl-mock",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the mock upstream."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}
COMPLETION = orjson.dumps(_COMPLETION)
# The same answer, the same size, with its usage under a key promptd does not read: the
# reference for counting usage costs the mock exactly what the answer with usage costs.
COMPLETION_WITHOUT_USAGE = orjson.dumps({("tally" if k == "usage" else k): v for k, v in _COMPLETION.items()})


def chunk(text: str, finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def make_app(delay_ms: float, chunk_delay_ms: float, chunks: int) -> web.Application:
    events = [chunk(f"token{i} ") for i in range(chunks)] + [chunk("", "stop"), b"data: [DONE]\n\n"]

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if b'"stream":true' not in body.replace(b" ", b""):
            answer = COMPLETION_WITHOUT_USAGE if request.headers.get("X-Mock-Usage") == "off" else COMPLETION
            return web.Response(body=answer, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            if chunk_delay_ms:
                await asyncio.sleep(chunk_delay_ms / 1000)
            await response.write(event)
        await response.write_eof()
        return response

    async def other(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"object":"list","data":[]}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/v1/responses", completions)  # the Responses scenarios measure promptd, not the answer's shape
    app.router.add_route("*", "/{tail:.*}", other)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait before answering")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="wait before each streamed chunk")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks in a streamed answer")
    args = parser.parse_args()
    uvloop.install()
    web.run_app(
        make_app(args.delay_ms, args.chunk_delay_ms, args.chunks),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
