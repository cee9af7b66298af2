"""The built-in `echo` upstream (README "The echo upstream"): answers locally with the
messages it received, as a `chat.completion` or as `chat.completion.chunk`
SSE events ending in `data: [DONE]`."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from aiohttp import web

from promptd.errors import NotFound
from promptd.jsonio import decode_json, encode_json
from promptd.upstreams.base import Call, Upstream

_CHUNK_CHARS = 48
_ids = itertools.count(1)
_PREFIX = os.urandom(4).hex()


def _usage(body: dict[str, Any], content: str) -> dict[str, int]:
    prompt_tokens = max(1, len(encode_json(body.get("messages"))) // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _head(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-echo{_PREFIX}{next(_ids):x}",
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model") if isinstance(body.get("model"), str) else "echo",
        "system_fingerprint": "promptd-echo",
    }


def echo_completion(body: dict[str, Any]) -> bytes:
    content = encode_json(body.get("messages")).decode()
    answer = _head(body, "chat.completion")
    answer["choices"] = [
        {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    answer["usage"] = _usage(body, content)
    return encode_json(answer)


def echo_stream(body: dict[str, Any]) -> list[bytes]:
    """The SSE events of a streamed answer, each a complete `data: ...\\n\\n` frame."""
    content = encode_json(body.get("messages")).decode()
    head = _head(body, "chat.completion.chunk")
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    deltas += [({"content": content[i : i + _CHUNK_CHARS]}, None) for i in range(0, len(content), _CHUNK_CHARS)]
    deltas.append(({}, "stop"))
    events = []
    for delta, finish in deltas:
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        events.append(b"data: " + encode_json(chunk) + b"\n\n")
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        chunk = {**head, "choices": [], "usage": _usage(body, content)}
        events.append(b"data: " + encode_json(chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


class EchoUpstream(Upstream):
    """`type = "echo"`: answers chat completions locally, with no network."""

    __slots__ = ()

    kind = "echo"

    async def forward(self, call: Call) -> web.StreamResponse:
        path = call.path.partition("?")[0]
        if path == "/chat/completions":
            return await _answer_chat(call, call.body if call.body is not None else decode_json(call.raw))
        raise NotFound(
            f"{call.request.method} {call.request.path}: the echo upstream answers only chat completions",
            code="not_found",
        )


_SSE = "text/event-stream"
_JSON = "application/json"


async def _answer_chat(call: Call, body: dict[str, Any]) -> web.StreamResponse:
    request, headers, exchange = call.request, call.headers, call.exchange
    if body.get("stream") is True:
        headers["Content-Type"] = _SSE
        headers["Cache-Control"] = "no-cache"
        out = web.StreamResponse(headers=headers)
        await out.prepare(request)
        exchange.stream = out
        events = echo_stream(body)
        exchange.first_byte = time.perf_counter() - exchange.started
        for event in events:
            await out.write(event)
            exchange.bytes_out += len(event)
        await out.write_eof()
        return out
    return web.Response(body=echo_completion(body), content_type=_JSON, headers=headers)
