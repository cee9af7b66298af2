"""Compile-and-forward chat completions, and the `/v1/*` passthrough.

The request body is decoded once (orjson); a request with no prompt field is
forwarded as the bytes it came with. The upstream's answer is relayed as it
arrives: SSE chunks are written to the client untouched, one by one.
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from promptd.compiler import compile_request
from promptd.compiler.fields import take_prompt_ref
from promptd.errors import BadRequest
from promptd.http.body import decode_object, read_body
from promptd.http.envelope import Exchange
from promptd.state import AppState
from promptd.upstreams.base import Call

_JSON = "application/json"


async def chat_completions(request: web.Request, state: AppState, exchange: Exchange) -> web.StreamResponse:
    raw = await read_body(request, state.settings.max_body_bytes)
    body = decode_object(raw)
    ref = take_prompt_ref(body)
    headers: dict[str, str] = {"x-request-id": exchange.request_id}
    if ref is None:
        model = body.get("model")
        if not model or model.__class__ is not str:
            raise BadRequest(
                "`model` is required (or send `prompt_id` for a prompt that sets one)",
                code="model_required",
                param="model",
            )
        outgoing: bytes = raw
    else:
        exchange.prompt_id = ref.id
        started = time.perf_counter()
        compiled = compile_request(state.prompts.current, ref, body, state.settings.default_environment)
        body = compiled.body
        model = body["model"]
        version = compiled.version
        exchange.version = version.number
        exchange.environment = compiled.environment
        headers.update(version.headers)
        outgoing = orjson.dumps(body)
        state.metrics.requests.compiled(time.perf_counter() - started)
    exchange.model = model
    upstream = state.router.for_model(model)
    exchange.upstream = upstream.name
    return await upstream.forward(Call(request, state, exchange, "/chat/completions", outgoing, body, headers))


async def passthrough(request: web.Request, state: AppState, exchange: Exchange) -> web.StreamResponse:
    """Any other `/v1/...` request, proxied as it is to the upstream of the body's model."""
    raw = await read_body(request, state.settings.max_body_bytes)
    model = None
    if raw[:1] == b"{" and request.content_type == _JSON:
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            decoded = None
        if decoded.__class__ is dict and decoded.get("model").__class__ is str:
            model = decoded["model"]
    upstream = state.router.for_model(model) if model else state.router.default
    exchange.model = model
    exchange.upstream = upstream.name
    path = request.raw_path[3:]  # "/v1/embeddings?x=1" -> "/embeddings?x=1"
    return await upstream.forward(
        Call(request, state, exchange, path, raw, None, {"x-request-id": exchange.request_id})
    )
