"""The built-in `echo` upstream (README "The echo upstream"): answers locally with the
messages it received, as a `chat.completion` or as `chat.completion.chunk`
SSE events ending in `data: [DONE]`."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from promptd.errors import NotFound
from promptd.http.messages import Response, StreamResponse
from promptd.jsonio import decode_json, encode_json
from promptd.ops.usage import usage_counts
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
    """`type = "echo"`: answers chat completions and responses locally, with no network."""

    __slots__ = ()

    kind = "echo"

    async def forward(self, call: Call) -> Response | StreamResponse:
        path = call.path.partition("?")[0]
        if path == "/chat/completions":
            return await _answer_chat(call, call.body if call.body is not None else decode_json(call.whole_raw()))
        if path == "/responses":
            return await _answer_responses(call, call.body if call.body is not None else decode_json(call.whole_raw()))
        raise NotFound(
            f"{call.request.method} {call.request.path}: the echo upstream answers only chat completions and responses",
            code="not_found",
        )


_SSE = "text/event-stream"
_JSON = "application/json"


async def _answer_chat(call: Call, body: dict[str, Any]) -> Response | StreamResponse:
    if body.get("stream") is True:
        return await _stream(call, echo_stream(body))
    answer = echo_completion(body)
    _count(call, answer)
    return Response(body=answer, content_type=_JSON, headers=call.headers)


def _count(call: Call, answer: bytes) -> None:
    if call.exchange.count_tokens is not None:
        metrics, prompt_id, version = call.exchange.count_tokens
        counts = usage_counts(answer)
        if counts is not None:
            metrics.count_tokens(prompt_id, version, counts)


async def _stream(call: Call, events: list[bytes]) -> Response | StreamResponse:
    request, headers, exchange = call.request, call.headers, call.exchange
    headers["Content-Type"] = _SSE
    headers["Cache-Control"] = "no-cache"
    out = StreamResponse(headers=headers)
    exchange.sse = True
    await out.prepare(request)
    exchange.stream = out
    exchange.first_byte = time.perf_counter() - exchange.started
    for event in events:
        await out.write(event)
        exchange.bytes_out += len(event)
    for event in events[-3:]:  # usage is in the last events (a final chunk, response.completed)
        if b'"usage":{' in event:
            _count(call, event)
    await out.write_eof()
    return out


def echo_response(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API `response` whose output text is the JSON of the
    `{"instructions", "input"}` it received."""
    text = encode_json({"instructions": body.get("instructions"), "input": body.get("input")}).decode()
    number = next(_ids)
    input_tokens = max(1, len(text) // 4)
    output_tokens = max(1, len(text) // 4)
    return {
        "id": f"resp_echo{_PREFIX}{number:x}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model") if isinstance(body.get("model"), str) else "echo",
        "output": [
            {
                "type": "message",
                "id": f"msg_echo{_PREFIX}{number:x}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        ],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text", {"format": {"type": "text"}}),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "metadata": body.get("metadata", {}),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def echo_response_events(body: dict[str, Any]) -> list[bytes]:
    """The typed SSE events of a streamed response, `response.created` to `response.completed`."""
    final = echo_response(body)
    message = final["output"][0]
    text = message["content"][0]["text"]
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    item = {**message, "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    ids = {"item_id": message["id"], "output_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **ids, "content_index": 0, "part": part},
    ]
    for i in range(0, len(text), _CHUNK_CHARS):
        delta = text[i : i + _CHUNK_CHARS]
        events.append({"type": "response.output_text.delta", **ids, "content_index": 0, "delta": delta, "logprobs": []})
    events += [
        {"type": "response.output_text.done", **ids, "content_index": 0, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **ids, "content_index": 0, "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": final},
    ]
    out = []
    for number, event in enumerate(events):
        event["sequence_number"] = number
        out.append(b"event: " + event["type"].encode() + b"\ndata: " + encode_json(event) + b"\n\n")
    return out


async def _answer_responses(call: Call, body: dict[str, Any]) -> Response | StreamResponse:
    if body.get("stream") is True:
        return await _stream(call, echo_response_events(body))
    answer = encode_json(echo_response(body))
    _count(call, answer)
    return Response(body=answer, content_type=_JSON, headers=call.headers)
