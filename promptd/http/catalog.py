"""promptd's own endpoints: the prompt catalogue, render, health and metrics."""

from __future__ import annotations

from typing import Any

from promptd.compiler.fields import PromptRef
from promptd.compiler.preview import preview
from promptd.compiler.resolve import find_prompt, resolve
from promptd.http.body import decode_object, read_body
from promptd.http.envelope import Exchange
from promptd.http.messages import Request, Response, StreamResponse
from promptd.jsonio import encode_json
from promptd.ops.logs import timestamp
from promptd.ops.metrics import CONTENT_TYPE_LATEST
from promptd.prompts.catalog import summarize
from promptd.state import AppState

_JSON = "application/json"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(body=encode_json(data), status=status, content_type=_JSON)


async def list_prompts(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    prompts = state.prompts.current
    default_environment = state.settings.default_environment
    return json_response(
        {
            "object": "list",
            "generation": prompts.generation,
            "hash": prompts.hash,
            "data": [summarize(prompts, prompts.prompts[i], default_environment) for i in sorted(prompts.prompts)],
        }
    )


async def get_prompt(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    exchange.prompt_id = request.match_info["prompt_id"]
    prompts = state.prompts.current
    prompt = find_prompt(prompts, exchange.prompt_id)
    out = summarize(prompts, prompt, state.settings.default_environment)
    out["versions"] = [prompt.versions[n].describe() for n in sorted(prompt.versions)]
    return json_response(out)


async def get_version(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    exchange.prompt_id = request.match_info["prompt_id"]
    prompt = find_prompt(state.prompts.current, exchange.prompt_id)
    exchange.prompt_id = prompt.id
    ref = PromptRef(prompt.id, version_alias=request.match_info["version"])
    version = resolve(state.prompts.current, ref, state.settings.default_environment).version
    exchange.version = version.number
    out = version.describe()
    out["prompt_id"] = prompt.id
    out["environments"] = sorted(
        env
        for env, target in prompt.targets.items()
        if (target == version.number if isinstance(target, int) else target.covers(version.number))
    )
    return json_response(out)


async def render_prompt(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    """Body `{version?, environment?, variables?, messages?, model?, ...}`: answers the
    exact body a chat completion would send upstream, and the upstream's name."""
    exchange.prompt_id = request.match_info["prompt_id"]
    raw = await read_body(request, state.settings.max_body_bytes, state.settings.client_timeout_s)
    body = decode_object(raw) if raw.strip() else {}
    answer = preview(state.prompts.current, state.router, state.settings.default_environment, exchange.prompt_id, body)
    exchange.version = answer["version"]
    exchange.environment = answer["environment"]
    exchange.model = answer["body"]["model"]
    return json_response(answer)


async def healthz(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    return json_response({"status": "ok"})


async def readyz(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    served = state.prompts
    prompts = served.current
    return json_response(
        {
            "status": "ready",
            "generation": prompts.generation,
            "hash": prompts.hash,
            "prompts": len(prompts.prompts),
            "versions": prompts.version_count,
            "loaded_at": timestamp(prompts.loaded_at),
            "last_reload_at": timestamp(served.last_reload_at),
            "last_reload_error": served.last_reload_error,
        }
    )


async def metrics(request: Request, state: AppState, exchange: Exchange) -> Response | StreamResponse:
    return Response(body=state.metrics.render(), content_type=CONTENT_TYPE_LATEST)
