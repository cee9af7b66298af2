"""`create_app(settings)`: the one place the aiohttp application is assembled."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from promptd.http import catalog as api
from promptd.http import chat as gw
from promptd.http.envelope import endpoint
from promptd.ops.logs import AccessLog
from promptd.ops.metrics import Metrics
from promptd.prompts.promptset import PromptLoader, PromptSet
from promptd.prompts.reload import Reloader, reload_context
from promptd.prompts.served import ServedPrompts
from promptd.settings import Settings
from promptd.state import APP_STATE, AppState
from promptd.upstreams.client import UpstreamClient
from promptd.upstreams.routing import Router


def create_app(
    settings: Settings,
    prompts: PromptSet | None = None,
    *,
    loader: PromptLoader | None = None,
    metrics: Metrics | None = None,
    access_log: AccessLog | None = None,
) -> web.Application:
    """Build the app. Without `prompts`, the prompt set is loaded now and a
    `ConfigError` is raised if it is invalid."""
    loader = loader or PromptLoader(settings.prompt_dirs)
    if prompts is None:
        prompts = loader.build()
    metrics = metrics or Metrics()
    served = ServedPrompts(prompts, metrics)
    state = AppState(
        settings=settings,
        prompts=served,
        reloader=Reloader(loader, served),
        router=Router(settings.upstreams),
        metrics=metrics,
        access_log=access_log or AccessLog(),
        api_keys=tuple(key.encode() for key in settings.api_keys),
    )
    app = web.Application(client_max_size=settings.max_body_bytes, handler_args={"max_field_size": 65536})
    app[APP_STATE] = state
    app.cleanup_ctx.append(_upstream_client)
    app.cleanup_ctx.append(_reloading)
    app.cleanup_ctx.append(_flush_access_log)

    chat = endpoint("chat_completions", gw.chat_completions)
    routes = app.router
    routes.add_get("/healthz", endpoint("healthz", api.healthz, auth=False))
    routes.add_get("/readyz", endpoint("readyz", api.readyz))
    routes.add_get("/metrics", endpoint("metrics", api.metrics, auth=False))
    routes.add_post("/v1/chat/completions", chat)
    routes.add_post("/chat/completions", chat)
    routes.add_get("/v1/prompts", endpoint("prompts", api.list_prompts))
    routes.add_get("/v1/prompts/{prompt_id}", endpoint("prompt", api.get_prompt))
    routes.add_post("/v1/prompts/{prompt_id}/render", endpoint("render", api.render_prompt))
    routes.add_route("*", "/v1/{tail:.*}", endpoint("passthrough", gw.passthrough))
    routes.add_route("*", "/{tail:.*}", endpoint("not_found", api.not_found))
    return app


async def _upstream_client(app: web.Application) -> AsyncIterator[None]:
    """Exactly one upstream client (and its keep-alive pools) per app."""
    state = app[APP_STATE]
    state.client = UpstreamClient()
    try:
        yield
    finally:
        state.client.close()


async def _reloading(app: web.Application) -> AsyncIterator[None]:
    state = app[APP_STATE]
    async for _ in reload_context(state.reloader, state.settings.prompt_dirs, state.settings.watch):
        yield


async def _flush_access_log(app: web.Application) -> AsyncIterator[None]:
    yield
    app[APP_STATE].access_log.flush()
