"""Render: a resolved version + the request's variables -> its messages and params.

Variables are checked against the version's rules (every problem at once),
defaults fill gaps, and the precompiled templates are walked. The result is
API-neutral: `chat.py` and the other assemblies turn it into a request body.
"""

from __future__ import annotations

import re
from typing import Any

from promptd.compiler.resolve import Resolved
from promptd.prompts.variables import MEDIA_KEY


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
        context = version.rules.apply({})
        return Rendered(resolved, version.render_messages(context), version.render_params(context), [])
    context = version.rules.apply(variables)
    messages = version.render_messages(context)
    media = context.get(MEDIA_KEY)
    if media is not None:  # only requests with media values pay for this
        messages = [_with_media(message, media) for message in messages]
    return Rendered(resolved, messages, version.render_params(context), version.rules.unused(variables))


_MARKER = re.compile("\x00media:(\\d+)\x00")


def _with_media(message: dict[str, Any], media: list[dict[str, Any]]) -> dict[str, Any]:
    """A message whose text holds media markers, as content parts: the text
    before each media value, the media part, the text after it."""
    content = message["content"]
    if content.__class__ is str:
        if "\x00media:" not in content:
            return message
        parts = _split(content, media)
    else:
        parts = []
        for part in content:
            text = part.get("text")
            if part.get("type") == "text" and text.__class__ is str and "\x00media:" in text:
                parts += _split(text, media)
            else:
                parts.append(part)
    return {**message, "content": parts}


def _split(text: str, media: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    position = 0
    for match in _MARKER.finditer(text):
        index = int(match[1])
        if index >= len(media):
            continue
        if match.start() > position:
            parts.append({"type": "text", "text": text[position : match.start()]})
        parts.append(media[index])
        position = match.end()
    if position < len(text):
        parts.append({"type": "text", "text": text[position:]})
    return parts
