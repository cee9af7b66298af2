"""The product: compile-and-forward chat completions, and the `/v1/*` passthrough.

The request body is decoded once (orjson); a request with no prompt field is
forwarded as the bytes it came with. The upstream's answer is relayed as it
arrives: SSE chunks are written to the client untouched, one by one.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from promptd.upstreams.client import UpstreamFailure, UpstreamResponse
from promptd.compiler import compile_request
from promptd.compiler.fields import take_prompt_ref
from promptd.upstreams.echo import echo_completion, echo_stream
from promptd.http.envelope import Exchange
from promptd.errors import BadRequest, BodyTooLarge, NotFound, PromptdError, UpstreamTimeout, UpstreamUnreachable
from promptd.upstreams.routing import Upstream
from promptd.state import AppState

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    }
)
# Not copied to the upstream: hop-by-hop, what the client writes itself (Host, Content-Length),
# and the client's credentials.
_DROP_REQUEST = HOP_BY_HOP | {"host", "content-length", "authorization", "x-request-id", "expect"}
# The upstream's own request id is relayed as x-upstream-request-id: x-request-id is promptd's.
_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "x-request-id"}
_BUFFER_LIMIT = 1024 * 1024  # non-SSE answers up to this size are read whole and sent at once
_SSE = "text/event-stream"
_JSON = "application/json"


async def read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body is larger than max_body_bytes ({limit} bytes)", code="body_too_large")


def decode_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if body.__class__ is not dict:
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return body


async def chat_completions(request: web.Request, state: AppState, exchange: Exchange) -> web.StreamResponse:
    raw = await read_body(request, state.settings.max_body_bytes)
    body = decode_object(raw)
    ref = take_prompt_ref(body)
    headers: dict[str, str] = {"x-request-id": exchange.request_id}
    if ref is None:
        model = body.get("model")
        if not model or model.__class__ is not str:
            raise BadRequest("`model` is required (or send `prompt_id` for a prompt that sets one)", code="model_required", param="model")
        outgoing: bytes = raw
    else:
        exchange.prompt_id = ref.id
        started = time.perf_counter()
        compiled = compile_request(
            state.prompts.current, ref, body, state.settings.default_environment
        )
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
    if upstream.is_echo:
        return await answer_echo(request, body, headers, exchange)
    return await relay(request, state, exchange, upstream, "/chat/completions", outgoing, headers)


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
    if upstream is None or upstream.is_echo:
        raise NotFound(
            f"{request.method} {request.path}: the echo upstream answers only chat completions",
            code="not_found",
        )
    exchange.upstream = upstream.name
    path = request.raw_path[3:]  # "/v1/embeddings?x=1" -> "/embeddings?x=1"
    return await relay(request, state, exchange, upstream, path, raw, {"x-request-id": exchange.request_id})


def upstream_headers(request: web.Request, upstream: Upstream, request_id: str, auth_consumed: bool) -> list[tuple[str, str]]:
    """The client's headers less hop-by-hop ones and its credentials; then the
    upstream's key, or the client's Authorization when the upstream has none."""
    headers = [(name, value) for name, value in request.headers.items() if name.lower() not in _DROP_REQUEST]
    if upstream.authorization is not None:
        headers.append(("Authorization", upstream.authorization))
    elif not auth_consumed:
        client = request.headers.get("Authorization")
        if client is not None:
            headers.append(("Authorization", client))
    headers.append(("X-Request-Id", request_id))
    return headers


def _upstream_error(state: AppState, upstream: Upstream, failure: UpstreamFailure) -> PromptdError:
    """Count an upstream failure and say what happened, as a 502 or 504."""
    state.metrics.upstream_error(upstream.name, failure.kind)
    if failure.kind == "timeout":
        return UpstreamTimeout(f'upstream "{upstream.name}" timed out: {failure.detail}', code="upstream_timeout")
    return UpstreamUnreachable(f'upstream "{upstream.name}": {failure.detail}', code="upstream_unreachable")


async def relay(
    request: web.Request,
    state: AppState,
    exchange: Exchange,
    upstream: Upstream,
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> web.StreamResponse:
    client = state.client
    assert client is not None and upstream.target is not None
    sent = time.perf_counter()
    try:
        response = await client.request(
            upstream.target,
            request.method,
            path,
            upstream_headers(request, upstream, exchange.request_id, bool(state.api_keys)),
            body,
            connect_timeout=upstream.connect_timeout,
            read_timeout=upstream.read_timeout,
        )
    except UpstreamFailure as failure:
        exchange.upstream_wait = time.perf_counter() - sent
        raise _upstream_error(state, upstream, failure) from None
    received = time.perf_counter()
    exchange.upstream_ttfb = exchange.upstream_wait = received - sent
    state.metrics.requests.upstream_ttfb(upstream.name, exchange.upstream_ttfb)
    if response.status >= 500:
        state.metrics.upstream_error(upstream.name, "status_5xx")
    finished = False
    try:
        out_headers = []
        for name, value in response.headers:
            lower = name.lower()
            if lower not in _DROP_RESPONSE:
                out_headers.append((name, value))
            elif lower == "x-request-id":
                out_headers.append(("x-upstream-request-id", value))
        out_headers += headers.items()
        length = response.content_length
        is_sse = response.content_type == _SSE
        if not is_sse and length is not None and length <= _BUFFER_LIMIT:
            try:
                data = await response.read()
            except UpstreamFailure as failure:
                raise _upstream_error(state, upstream, failure) from None
            finally:
                exchange.upstream_wait = time.perf_counter() - sent
            finished = True
            return web.Response(body=data, status=response.status, reason=response.reason or None, headers=out_headers)
        out = web.StreamResponse(status=response.status, reason=response.reason or None, headers=out_headers)
        if length is not None:
            out.content_length = length
        await out.prepare(request)
        exchange.stream = out
        finished = await _relay_stream(request, response, out, state, exchange, upstream, is_sse, received)
        return out
    finally:
        if finished:
            response.release()
        else:  # cancelled (the client left) or failed: drop the upstream connection
            response.close()


async def _relay_stream(
    request: web.Request,
    response: UpstreamResponse,
    out: web.StreamResponse,
    state: AppState,
    exchange: Exchange,
    upstream: Upstream,
    is_sse: bool,
    waiting_since: float,
) -> bool:
    """Write each piece of the body as it arrives; True when the upstream finished it."""
    next_chunk = response.next_chunk
    sent_bytes = 0
    try:
        while chunk := await next_chunk():
            if exchange.first_byte is None:
                exchange.upstream_wait += time.perf_counter() - waiting_since
                await out.write(chunk)
                exchange.first_byte = time.perf_counter() - exchange.started
            else:
                await out.write(chunk)
            sent_bytes += len(chunk)
    except UpstreamFailure as failure:
        error = _upstream_error(state, upstream, failure)
        exchange.bytes_out = sent_bytes
        if not is_sse:
            # Not an event stream: an abruptly closed connection is the only honest signal.
            if request.transport is not None:
                request.transport.close()
            return False
        await out.write(b"data: " + error.render() + b"\n\n")
        await out.write_eof()
        return False
    exchange.bytes_out = sent_bytes
    await out.write_eof()
    return True


async def answer_echo(
    request: web.Request, body: dict[str, Any], headers: dict[str, str], exchange: Exchange
) -> web.StreamResponse:
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
