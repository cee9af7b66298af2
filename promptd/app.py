"""`create_app(settings)`: the one place the aiohttp application is assembled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from promptd.http import catalog, chat, console
from promptd.http.envelope import Handler, endpoint
from promptd.ops.logs import AccessLog
from promptd.ops.metrics import PUBLISH_INTERVAL_S, Metrics
from promptd.prompts.lock import lock_path
from promptd.prompts.promptset import PromptLoader, PromptSet
from promptd.prompts.reload import Reloader, reload_context
from promptd.prompts.served import ServedPrompts
from promptd.settings import Settings
from promptd.state import APP_STATE, AppState
from promptd.upstreams.client import UpstreamClient
from promptd.upstreams.routing import Router

# Every route: path, endpoint name (metrics, logs), method -> handler, needs auth.
# A method not listed gets a 405; anything under /v1/prompts that is not listed is
# a local 404, never proxied.
ROUTES: list[tuple[str, str, dict[str, Handler], bool]] = [
    ("/healthz", "healthz", {"GET": catalog.healthz}, False),
    ("/readyz", "readyz", {"GET": catalog.readyz}, True),
    ("/metrics", "metrics", {"GET": catalog.metrics}, False),
    ("/v1/chat/completions", "chat_completions", {"POST": chat.chat_completions}, True),
    ("/chat/completions", "chat_completions", {"POST": chat.chat_completions}, True),
    ("/v1/responses", "responses", {"POST": chat.responses}, True),
    ("/responses", "responses", {"POST": chat.responses}, True),
    ("/v1/prompts", "prompts", {"GET": catalog.list_prompts}, True),
    ("/v1/prompts/{prompt_id}", "prompt", {"GET": catalog.get_prompt}, True),
    ("/v1/prompts/{prompt_id}/versions/{version}", "prompt_version", {"GET": catalog.get_version}, True),
    ("/v1/prompts/{prompt_id}/render", "render", {"POST": catalog.render_prompt}, True),
    ("/v1/prompts/{tail:.*}", "not_found", {}, True),
    ("/v1/{tail:.*}", "passthrough", {"*": chat.passthrough}, True),
]
# The console's page and files: served without a key (the page asks for one);
# left out with `[ui] enabled = false`, so /ui is then a 404 like any unknown path.
CONSOLE_ROUTES: list[tuple[str, str, dict[str, Handler], bool]] = [
    ("/ui", "console", {"GET": console.page}, False),
    ("/ui/", "console", {"GET": console.page}, False),
    ("/ui/{asset}", "console", {"GET": console.asset}, False),
]
NOT_FOUND_ROUTE: tuple[str, str, dict[str, Handler], bool] = ("/{tail:.*}", "not_found", {}, True)


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
    loader = loader or PromptLoader(settings.prompt_dirs, lock_path(settings.config_path), settings.default_environment)
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
    app.cleanup_ctx.append(_publishing_metrics)

    routes = [*ROUTES, *(CONSOLE_ROUTES if settings.ui_enabled else ()), NOT_FOUND_ROUTE]
    for path, name, methods, auth in routes:
        app.router.add_route("*", path, endpoint(name, methods, auth=auth))
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


async def _publishing_metrics(app: web.Application) -> AsyncIterator[None]:
    """With several workers: this worker's request metrics go to the shared directory."""
    snapshots = app[APP_STATE].metrics.snapshots
    if snapshots is None:
        yield
        return

    async def publish() -> None:
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL_S)
            snapshots.publish()

    task = asyncio.create_task(publish(), name="promptd-metrics-publisher")
    try:
        yield
    finally:
        task.cancel()
        snapshots.publish()


async def _flush_access_log(app: web.Application) -> AsyncIterator[None]:
    yield
    app[APP_STATE].access_log.flush()
