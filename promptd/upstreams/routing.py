"""Routing an outgoing model to one of the configured upstreams (README "Routing").

Glob patterns are compiled once; the model -> upstream answer is memoised, so
routing a request is a dict lookup.
"""

from __future__ import annotations

import fnmatch
import re

from promptd.errors import BadRequest
from promptd.settings import UpstreamSettings
from promptd.upstreams.base import Upstream
from promptd.upstreams.echo import EchoUpstream
from promptd.upstreams.http import HttpUpstream

_MEMO_LIMIT = 4096


def make_upstream(settings: UpstreamSettings) -> Upstream:
    if settings.type == "echo":
        return EchoUpstream(settings.name, settings.models, settings.default)
    return HttpUpstream(settings)


class Router:
    def __init__(self, upstreams: tuple[UpstreamSettings, ...]) -> None:
        self.upstreams = tuple(make_upstream(u) for u in upstreams)
        self._matchers = [
            (re.compile(fnmatch.translate(pattern)), upstream)
            for upstream in self.upstreams
            for pattern in upstream.patterns
        ]
        self._memo: dict[str, Upstream | None] = {}
        self.default = next((u for u in self.upstreams if u.default), None) or next(
            (u for u in self.upstreams if not isinstance(u, EchoUpstream)),
            self.upstreams[0] if self.upstreams else None,
        )

    def match(self, model: str) -> Upstream | None:
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = next((upstream for regex, upstream in self._matchers if regex.match(model)), None)
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[model] = found
        return found

    def for_model(self, model: str) -> Upstream:
        upstream = self.match(model)
        if upstream is None:
            known = "; ".join(f"{u.name}: {', '.join(u.patterns)}" for u in self.upstreams)
            raise BadRequest(
                f'no upstream serves model "{model}" (upstreams: {known})',
                code="no_upstream_for_model",
                param="model",
            )
        return upstream
