"""The HTTP upstream: sends the request to a real OpenAI-compatible API and
relays its answer as it arrives (SSE chunks written to the client untouched,
one by one; small non-SSE answers read whole and sent at once)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from promptd.errors import PromptdError, UpstreamTimeout, UpstreamUnreachable
from promptd.http.messages import DECODERS, Request, Response, StreamResponse
from promptd.ops.usage import usage_counts
from promptd.settings import UpstreamSettings
from promptd.upstreams.base import Call, Upstream
from promptd.upstreams.client import Target, UpstreamFailure, UpstreamResponse

if TYPE_CHECKING:
    from promptd.http.envelope import Exchange
    from promptd.state import AppState

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
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


def count_usage(exchange: Exchange, data: bytes) -> None:
    """Count the tokens of the answer's `usage` (searched from the end) for a compiled request."""
    counts = usage_counts(data)
    if counts is not None and exchange.count_tokens is not None:
        metrics, prompt_id, version = exchange.count_tokens
        metrics.count_tokens(prompt_id, version, counts)


class HttpUpstream(Upstream):
    __slots__ = ("target", "authorization", "connect_timeout", "read_timeout")

    kind = "openai"

    def __init__(self, settings: UpstreamSettings) -> None:
        super().__init__(settings.name, settings.models, settings.default)
        self.target = Target(settings.base_url)
        self.authorization = f"Bearer {settings.api_key}" if settings.api_key else None
        self.connect_timeout = settings.connect_timeout_s
        self.read_timeout = settings.read_timeout_s

    async def forward(self, call: Call) -> Response | StreamResponse:
        return await relay(self, call)


# With auth on, the client's credentials are promptd's: none of them goes upstream.
_CREDENTIALS = frozenset({"x-api-key", "api-key", "cookie"})
# What the server decodes itself (`http/messages.py`): such a body is forwarded decoded, without the header.
_DECODED = frozenset(DECODERS)


def upstream_headers(
    request: Request, upstream: HttpUpstream, request_id: str, auth_consumed: bool
) -> list[tuple[str, str]]:
    """The client's headers less hop-by-hop ones (and any its `Connection` header
    names), its credentials and a Content-Encoding the server already decoded;
    then the upstream's key, or the client's Authorization when the upstream has none."""
    items = request.headers.items()
    connection = request.headers.get("Connection")
    drop = _DROP_REQUEST
    named = connection is not None and connection.strip().lower() not in ("keep-alive", "close")
    if named or auth_consumed or "Content-Encoding" in request.headers:
        drop = set(drop)
        if named:
            drop.update(token.strip().lower() for token in connection.split(","))  # type: ignore[union-attr]
        if auth_consumed:
            drop.update(_CREDENTIALS)
        if request.headers.get("Content-Encoding", "").strip().lower() in _DECODED:
            drop.add("content-encoding")
    headers = [(name, value) for name, value in items if name.lower() not in drop]
    if upstream.authorization is not None:
        headers.append(("Authorization", upstream.authorization))
    elif not auth_consumed:
        client = request.headers.get("Authorization")
        if client is not None:
            headers.append(("Authorization", client))
    headers.append(("X-Request-Id", request_id))
    return headers


def _upstream_error(state: AppState, upstream: HttpUpstream, failure: UpstreamFailure) -> PromptdError:
    """Count an upstream failure and say what happened, as a 502 or 504."""
    state.metrics.upstream_error(upstream.name, failure.kind)
    if failure.kind == "timeout":
        return UpstreamTimeout(f'upstream "{upstream.name}" timed out: {failure.detail}', code="upstream_timeout")
    return UpstreamUnreachable(f'upstream "{upstream.name}": {failure.detail}', code="upstream_unreachable")


async def relay(upstream: HttpUpstream, call: Call) -> Response | StreamResponse:
    request, state, exchange, headers = call.request, call.state, call.exchange, call.headers
    client = state.client
    assert client is not None
    sent = time.perf_counter()
    try:
        response = await client.request(
            upstream.target,
            request.method,
            call.path,
            upstream_headers(request, upstream, exchange.request_id, bool(state.api_keys)),
            call.raw,
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
            if exchange.count_tokens is not None and response.status < 400:
                count_usage(exchange, data)
            return Response(body=data, status=response.status, reason=response.reason or None, headers=out_headers)
        out = StreamResponse(status=response.status, reason=response.reason or None, headers=out_headers)
        if length is not None:
            out.content_length = length
        exchange.sse = is_sse
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
    request: Request,
    response: UpstreamResponse,
    out: StreamResponse,
    state: AppState,
    exchange: Exchange,
    upstream: HttpUpstream,
    is_sse: bool,
    waiting_since: float,
) -> bool:
    """Write each piece of the body as it arrives; True when the upstream finished it."""
    next_chunk = response.next_chunk
    sent_bytes = 0
    last_usage: bytes | None = None  # the last chunk that carried a usage object
    try:
        while chunk := await next_chunk():
            if exchange.first_byte is None:
                exchange.upstream_wait += time.perf_counter() - waiting_since
                await out.write(chunk)
                exchange.first_byte = time.perf_counter() - exchange.started
            else:
                await out.write(chunk)
            exchange.at_event_boundary = chunk.endswith(b"\n\n")
            sent_bytes += len(chunk)
            if exchange.count_tokens is not None and b'"usage"' in chunk:
                last_usage = chunk
    except UpstreamFailure as failure:
        error = _upstream_error(state, upstream, failure)
        exchange.bytes_out = sent_bytes
        if not is_sse:
            # Not an event stream: an abruptly closed connection is the only honest signal.
            if request.transport is not None:
                request.transport.close()
            return False
        prefix = b"" if exchange.at_event_boundary else b"\n\n"
        await out.write(prefix + b"data: " + error.render() + b"\n\n")
        await out.write_eof()
        return False
    exchange.bytes_out = sent_bytes
    if last_usage is not None:
        count_usage(exchange, last_usage)
    await out.write_eof()
    return True
