"""The one wrapper every route goes through: auth, error rendering, metrics and
the access log, in one place (no per-request middleware chain)."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from promptd.compiler.fields import clip
from promptd.errors import InternalError, MethodNotAllowed, NotFound, PromptdError, Unauthorized
from promptd.http.messages import Request, Response, StreamResponse
from promptd.ops.metrics import NONE, UNKNOWN
from promptd.state import AppState

log = logging.getLogger("promptd")

_request_ids = itertools.count(1)
_REQUEST_ID_PREFIX = os.urandom(4).hex()
_JSON = "application/json"


class Exchange:
    """What one request did, for the metrics and the access log."""

    __slots__ = (
        "endpoint",
        "request_id",
        "started",
        "prompt_id",
        "version",
        "environment",
        "upstream",
        "model",
        "upstream_ttfb",
        "upstream_wait",
        "first_byte",
        "bytes_out",
        "stream",
        "sse",
        "at_event_boundary",
        "transport",
        "shut_down",
        "rollout",
        "count_tokens",
    )

    def __init__(self, endpoint: str, request: Request) -> None:
        self.endpoint = endpoint
        self.started = time.perf_counter()
        given = request.headers.get("X-Request-Id")
        self.request_id = safe_id(given) if given else f"{_REQUEST_ID_PREFIX}{next(_request_ids):08x}"
        self.prompt_id: str | None = None  # as asked for; the metric label is bounded separately
        self.version: int | None = None
        self.environment: str | None = None
        self.upstream: str | None = None
        self.model: str | None = None
        self.upstream_ttfb: float | None = None  # send -> response headers
        self.upstream_wait = 0.0  # seconds spent waiting on the upstream (streams: until the first chunk)
        self.first_byte: float | None = None  # streams: seconds from start to the first byte relayed
        self.bytes_out = 0
        self.stream: StreamResponse | None = None  # set once a streamed answer started
        self.sse = False  # the stream is server-sent events
        self.at_event_boundary = True  # what was relayed so far ends with a whole SSE event
        self.transport = request.transport
        self.shut_down = False  # the stream was ended by SIGTERM's grace running out
        self.rollout: str | None = None  # "<environment> <version> sticky|random"
        # Set for compiled requests: (metrics, prompt id, version) to count the answer's usage under.
        self.count_tokens: tuple[Any, str, str] | None = None


_ID_LIMIT = 128


def safe_id(text: str) -> str:
    """A client's request id as promptd echoes and logs it: at most 128
    characters of printable ASCII (anything else becomes `?`)."""
    text = text[:_ID_LIMIT]
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text)


Handler = Callable[[Request, AppState, Exchange], Awaitable[Response | StreamResponse]]


def error_response(error: PromptdError, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    if error.headers:
        headers.update(error.headers)
    close = headers.pop("Connection", None) == "close"
    response = Response(body=error.render(), status=error.status, content_type=_JSON, headers=headers)
    if close:
        response.force_close()
    return response


def _no_handler(request: Request, allowed: str) -> PromptdError:
    what = f"{request.method} {clip(request.path)}"
    if not allowed:
        return NotFound(f"{what}: no such endpoint", code="not_found")
    return MethodNotAllowed(
        f"{what}: method not allowed (allowed: {allowed})", code="method_not_allowed", headers={"Allow": allowed}
    )


def check_auth(request: Request, keys: tuple[bytes, ...]) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip().encode()
    ok = False
    for key in keys:  # every key is compared, in constant time, whatever matched
        ok |= hmac.compare_digest(given, key)
    if not ok or scheme.lower() != "bearer":
        raise Unauthorized(
            "missing or invalid promptd API key: send `Authorization: Bearer <key>`", code="unauthorized"
        )


def prompt_label(state: AppState, prompt_id: str | None) -> str:
    """The metric label of a prompt id: only ids of the served set, so cardinality stays bounded."""
    if prompt_id is None:
        return NONE
    return prompt_id if prompt_id in state.prompts.current.prompts else UNKNOWN


def endpoint(
    state: AppState, name: str, methods: Mapping[str, Handler], *, auth: bool = True
) -> Callable[[Request], Awaitable[Response | StreamResponse]]:
    """One route's handler: `methods` maps an HTTP method (or "*") to a handler;
    none at all makes the route a 404, a method not listed a 405."""
    allowed = ", ".join(sorted({*methods, "HEAD"} if "GET" in methods else methods))

    async def handle(request: Request) -> Response | StreamResponse:
        exchange = Exchange(name, request)
        metrics = state.metrics
        metrics.requests.started()
        inflight = state.inflight
        inflight.add(exchange)
        cancelled = False
        try:
            if auth and state.api_keys:
                check_auth(request, state.api_keys)
            method = request.method
            handler = methods.get(method) or methods.get("*") or (methods.get("GET") if method == "HEAD" else None)
            if handler is None:
                raise _no_handler(request, allowed)
            response = await handler(request, state, exchange)
        except PromptdError as error:
            if error.code == "prompt_not_found" and state.prompts.last_reload_error:
                served = state.prompts
                error.message += (
                    f"; the last reload failed: {served.last_reload_error[0]}"
                    f"{f' (+{len(served.last_reload_error) - 1} more)' if len(served.last_reload_error) > 1 else ''};"
                    f" still serving generation {served.current.generation}"
                )
            if exchange.prompt_id is not None and error.status in (400, 404):
                metrics.prompt_error(prompt_label(state, exchange.prompt_id), error.code)
            response = exchange.stream or error_response(error, exchange.request_id)
        except asyncio.CancelledError:
            cancelled = not exchange.shut_down
            raise
        except ConnectionResetError:
            # The client went away while its answer was being written: not promptd's error.
            if exchange.stream is None:
                raise
            cancelled = True
            raise asyncio.CancelledError from None
        except Exception:
            log.exception("unexpected error", extra={"request_id": exchange.request_id, "path": clip(request.path)})
            response = exchange.stream or error_response(InternalError(), exchange.request_id)
        finally:
            metrics.requests.finished()
            inflight.discard(exchange)
            if cancelled:
                _finish(state, exchange, request, 499)  # the client went away; nginx's status for it
            elif exchange.shut_down and exchange.stream is not None:
                _finish(state, exchange, request, exchange.stream.status, exchange.stream)
        _finish(state, exchange, request, response.status, response)
        return response

    handle.__name__ = f"{name}_endpoint"
    return handle


def _finish(
    state: AppState,
    exchange: Exchange,
    request: Request,
    status: int,
    response: Response | StreamResponse | None = None,
) -> None:
    duration = time.perf_counter() - exchange.started
    prompt_id = exchange.prompt_id
    label = prompt_label(state, prompt_id)
    if exchange.first_byte is None:
        overhead = duration - exchange.upstream_wait
    else:  # a stream: promptd's time up to the first byte relayed
        overhead = exchange.first_byte - exchange.upstream_wait
    version = str(exchange.version) if exchange.version is not None and label != UNKNOWN else NONE
    state.metrics.requests.request_done(exchange.endpoint, label, version, status, duration, overhead)
    access_log = state.access_log
    if not access_log.enabled:
        return
    bytes_out = exchange.bytes_out
    if not bytes_out and response is not None and response.__class__ is Response:
        bytes_out = len(response.body)  # type: ignore[union-attr]
    access_log.record(
        exchange.request_id,
        request.method,
        request.raw_path.partition("?")[0],  # query strings can carry secrets
        status,
        exchange.endpoint,
        prompt_id,
        exchange.version,
        exchange.environment,
        exchange.upstream,
        exchange.model,
        _ms(duration),
        _ms(overhead),
        None if exchange.upstream_ttfb is None else _ms(exchange.upstream_ttfb),
        bytes_out,
        exchange.rollout,
    )


def _ms(seconds: float) -> float:
    """Milliseconds to 3 decimals: what round(seconds * 1000, 3) gives, for a fifth of its cost."""
    return int(seconds * 1_000_000 + 0.5) / 1000
