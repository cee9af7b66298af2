"""`create_app(settings)`: the one place the app is assembled, its routes and the
resources it holds while it serves (`cleanup_ctx`, as with aiohttp)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from promptd.http import catalog, chat, console
from promptd.http.envelope import Handler, endpoint
from promptd.http.messages import Request, Response, StreamResponse
from promptd.http.routing import Routes
from promptd.ops.logs import AccessLog
from promptd.ops.metrics import PUBLISH_INTERVAL_S, Metrics
from promptd.prompts.lock import lock_path
from promptd.prompts.promptset import PromptLoader, PromptSet
from promptd.prompts.reload import Reloader, reload_context
from promptd.prompts.served import ServedPrompts
from promptd.settings import Settings
from promptd.state import AppState
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


class App:
    """The gateway: its state, its routes, and the resources it opens to serve
    (`cleanup_ctx`: async generators run to their `yield` at start, resumed at stop)."""

    def __init__(self, state: AppState, routes: Routes) -> None:
        self.state = state
        self.routes = routes
        self.cleanup_ctx: list[Callable[[App], AsyncIterator[None]]] = []
        self._running: list[AsyncIterator[None]] = []

    def handle(self, request: Request) -> asyncio.Future[Response | StreamResponse]:
        return self.routes.dispatch(request)  # type: ignore[return-value]

    async def startup(self) -> None:
        for context in self.cleanup_ctx:
            running = context(self)
            await anext(running)
            self._running.append(running)

    async def cleanup(self) -> None:
        while self._running:
            running = self._running.pop()
            with contextlib.suppress(StopAsyncIteration):
                await anext(running)


def create_app(
    settings: Settings,
    prompts: PromptSet | None = None,
    *,
    loader: PromptLoader | None = None,
    metrics: Metrics | None = None,
    access_log: AccessLog | None = None,
) -> App:
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
    routes = Routes(fallback=endpoint(state, "not_found", {}, auth=True))
    for path, name, methods, auth in [*ROUTES, *(CONSOLE_ROUTES if settings.ui_enabled else ())]:
        routes.add(path, endpoint(state, name, methods, auth=auth))
    app = App(state, routes)
    app.cleanup_ctx.append(_upstream_client)
    app.cleanup_ctx.append(_reloading)
    app.cleanup_ctx.append(_flush_access_log)
    app.cleanup_ctx.append(_publishing_metrics)
    return app


async def _upstream_client(app: App) -> AsyncIterator[None]:
    """Exactly one upstream client (and its keep-alive pools) per app."""
    state = app.state
    state.client = UpstreamClient()
    try:
        yield
    finally:
        state.client.close()


async def _reloading(app: App) -> AsyncIterator[None]:
    state = app.state
    async for _ in reload_context(state.reloader, state.settings.prompt_dirs, state.settings.watch):
        yield


async def _publishing_metrics(app: App) -> AsyncIterator[None]:
    """With several workers: this worker's request metrics go to the shared directory."""
    snapshots = app.state.metrics.snapshots
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


async def _flush_access_log(app: App) -> AsyncIterator[None]:
    yield
    app.state.access_log.flush()
