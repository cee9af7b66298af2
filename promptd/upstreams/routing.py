"""Upstreams, and routing an outgoing model to one of them (DESIGN.md 3.2).

Glob patterns are compiled once; the model -> upstream answer is memoised, so
routing a request is a dict lookup.
"""

from __future__ import annotations

import fnmatch
import re

from promptd.upstreams.client import Target
from promptd.errors import BadRequest
from promptd.settings import UpstreamSettings

_MEMO_LIMIT = 4096


class Upstream:
    __slots__ = ("name", "is_echo", "target", "authorization", "connect_timeout", "read_timeout", "default", "patterns")

    def __init__(self, settings: UpstreamSettings) -> None:
        self.name = settings.name
        self.is_echo = settings.type == "echo"
        self.target = None if self.is_echo else Target(settings.base_url)
        self.authorization = f"Bearer {settings.api_key}" if settings.api_key else None
        self.connect_timeout = settings.connect_timeout_s
        self.read_timeout = settings.read_timeout_s
        self.default = settings.default
        self.patterns = settings.models

    def __repr__(self) -> str:  # never show the key
        return f"Upstream({self.name!r})"


class Router:
    def __init__(self, upstreams: tuple[UpstreamSettings, ...]) -> None:
        self.upstreams = tuple(Upstream(u) for u in upstreams)
        self._matchers = [
            (re.compile(fnmatch.translate(pattern)), upstream)
            for upstream in self.upstreams
            for pattern in upstream.patterns
        ]
        self._memo: dict[str, Upstream | None] = {}
        self.default = next((u for u in self.upstreams if u.default), None) or next(
            (u for u in self.upstreams if not u.is_echo), self.upstreams[0] if self.upstreams else None
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
