"""Render: a resolved version + the request's variables -> its messages and params.

Variables are checked against the version's rules (every problem at once),
defaults fill gaps, and the precompiled templates are walked. The result is
API-neutral: `chat.py` and the other assemblies turn it into a request body.
"""

from __future__ import annotations

from typing import Any

from promptd.compiler.resolve import Resolved


class Rendered:
    __slots__ = ("resolved", "messages", "params", "unused")

    def __init__(
        self, resolved: Resolved, messages: list[dict[str, Any]], params: dict[str, Any], unused: list[str]
    ) -> None:
        self.resolved = resolved
        self.messages = messages
        self.params = params
        self.unused = unused  # the request's variables that the version does not use


def render(resolved: Resolved, variables: dict[str, Any] | None) -> Rendered:
    version = resolved.version
    if not variables:
        return Rendered(resolved, version.render_messages(version.rules.apply({})), version.params, [])
    context = version.rules.apply(variables)
    return Rendered(resolved, version.render_messages(context), version.params, version.rules.unused(variables))
