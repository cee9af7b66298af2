"""The app's state: one typed object, `app.state`.

What changes while serving (the prompt set, the upstream client) changes as an
attribute of the objects it holds, never by replacing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptd.ops.logs import AccessLog
from promptd.ops.metrics import Metrics
from promptd.prompts.reload import Reloader
from promptd.prompts.served import ServedPrompts
from promptd.settings import Settings
from promptd.upstreams.client import UpstreamClient
from promptd.upstreams.routing import Router


@dataclass(eq=False)
class AppState:
    settings: Settings
    prompts: ServedPrompts
    reloader: Reloader
    router: Router
    metrics: Metrics
    access_log: AccessLog
    api_keys: tuple[bytes, ...] = field(repr=False)
    client: UpstreamClient | None = None  # opened by the app's cleanup_ctx
    # The requests being handled now (their `Exchange`s): SIGTERM's drain waits for them.
    inflight: set[Any] = field(default_factory=set)
