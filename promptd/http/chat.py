"""Compile-and-forward chat completions and responses, and the `/v1/*` passthrough.

The request body is decoded once (orjson); a request with no prompt field is
forwarded as the bytes it came with. The upstream's answer is relayed as it
arrives: SSE chunks are written to the client untouched, one by one.
"""

from __future__ import annotations

import time
from typing import Any

from promptd.compiler import compile_request
from promptd.compiler.chat import splice_messages
from promptd.compiler.fields import clip, take_prompt_ref
from promptd.errors import BadRequest
from promptd.http.body import SPLIT_FROM_BYTES, decode_object, is_raw_null, prompt_fields_of, read_body, top_level
from promptd.http.envelope import Exchange
from promptd.http.messages import Request, Response, StreamResponse
from promptd.jsonio import encode_around, encode_json
from promptd.state import AppState
from promptd.upstreams.base import Call


async def chat_completions(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    return await compile_and_forward(request, state, exchange, "chat", "/chat/completions")


async def responses(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    """`POST /v1/responses`: the same prompt fields, assembled into a Responses body."""
    return await compile_and_forward(request, state, exchange, "responses", "/responses")


async def compile_and_forward(
    request: Request, state: AppState, exchange: Exchange, api: str, path: str
) -> Response | StreamResponse:
    """A request with prompt fields is compiled for `api` and sent to `path` below
    the upstream's base URL; one without is forwarded as the bytes it came with."""
    raw = await read_body(request, state.settings.max_body_bytes, state.settings.client_timeout_s)
    headers: dict[str, str] = {"x-request-id": exchange.request_id}
    body: dict[str, Any] | None = None
    large = None
    if len(raw) < SPLIT_FROM_BYTES:  # small: one full decode is the cheapest
        body = decode_object(raw)
        valued, nulls = prompt_fields_of(body)
        model = body.get("model")
        if model.__class__ is not str or not model:
            model = None
    else:  # large: one pass splits the top level; only what is needed is decoded
        large = top_level(raw)
        valued, nulls = large.prompt_fields()
        model = large.model_name()
    if not valued:
        if model is None:
            raise BadRequest(
                "`model` is required (or send `prompt_id` for a prompt that sets one)",
                code="model_required",
                param="model",
            )
        outgoing = raw
        if nulls:  # null prompt fields are absent: removed, the rest forwarded as it came
            body = body if body is not None else large.decoded()  # type: ignore[union-attr]
            take_prompt_ref(body)
            outgoing = encode_json(body)
    else:
        conversation = None  # a large body's `messages`, kept as raw JSON
        if body is None:
            body = large.decoded("messages" if api == "chat" else None)  # type: ignore[union-attr]
            conversation = body.pop("messages", None) if api == "chat" else None
            if conversation is not None and is_raw_null(conversation):
                conversation = None
        ref = take_prompt_ref(body)
        assert ref is not None
        exchange.prompt_id = ref.id
        sticky = request.headers.get("x-promptd-sticky-key")
        if sticky:
            ref.sticky_key = sticky
        started = time.perf_counter()
        compiled = compile_request(state.prompts.current, ref, body, state.settings.default_environment, api=api)
        body = compiled.body
        model = body["model"]
        exchange.prompt_id = compiled.prompt.id
        exchange.version = compiled.version.number
        exchange.environment = compiled.environment
        exchange.rollout = compiled.rollout
        exchange.count_tokens = (state.metrics.requests, compiled.prompt.id, str(compiled.version.number))
        headers.update(compiled.headers())
        if conversation is None:
            outgoing = encode_json(body)
        else:
            pieces = splice_messages(body["messages"], conversation, compiled.version.history_at)
            outgoing = encode_around(body, "messages", pieces)
            body = None  # what is sent is only in `outgoing`
        state.metrics.requests.compiled(time.perf_counter() - started)
    exchange.model = model
    upstream = state.router.for_model(model)
    exchange.upstream = upstream.name
    return await upstream.forward(Call(request, state, exchange, path, outgoing, body, headers))


async def passthrough(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    """Any other `/v1/...` request, proxied as it is to the upstream of the body's
    model. A body with prompt fields is refused: they would reach the upstream raw."""
    path = upstream_path(request)
    raw = await read_body(request, state.settings.max_body_bytes, state.settings.client_timeout_s)
    model = None
    if raw[:1] == b"{" or raw.lstrip()[:1] == b"{":  # (a large body is a bytearray: lstrip copies it)
        try:
            members = top_level(raw)
        except BadRequest:
            members = None  # not JSON: the upstream judges it
        if members is not None:
            if members.prompt_fields()[0]:
                raise BadRequest(
                    f"prompt fields are compiled only on POST /v1/chat/completions and POST /v1/responses;"
                    f" {request.method} {clip(request.path)} would send them upstream raw",
                    code="invalid_prompt_fields",
                )
            model = members.model_name()
    upstream = state.router.for_model(model) if model else state.router.default
    exchange.model = model
    exchange.upstream = upstream.name
    return await upstream.forward(
        Call(request, state, exchange, path, raw, None, {"x-request-id": exchange.request_id})
    )


_DOT_SEGMENTS = frozenset({".", "..", "%2e", "%2e%2e", ".%2e", "%2e."})


def upstream_path(request: Request) -> str:
    """The request's target below `/v1`, as it will be appended to an upstream's
    base URL ("/v1/embeddings?x=1" -> "/embeddings?x=1"). Dot segments, empty
    segments and absolute-form targets are refused, never forwarded."""
    target = request.raw_path
    path = target.partition("?")[0]
    segments = path.split("/")
    if (
        not target.startswith("/v1/")
        or any(segment.lower() in _DOT_SEGMENTS for segment in segments)
        or "" in segments[2:-1]
    ):
        raise BadRequest(
            f"{clip(path)}: a path with dot segments, empty segments or a scheme is not forwarded",
            code="invalid_path",
        )
    return target[3:]
