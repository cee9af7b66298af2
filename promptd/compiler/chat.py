"""The Chat Completions assembly (README "Compilation and merge").

The prompt's rendered messages, then the request's; the version's model, else
the request's; the version's params as defaults under the request's; every
other request field forwarded unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from promptd.compiler.render import Rendered
from promptd.errors import BadRequest
from promptd.jsonio import encode_json


def pick_model(rendered: Rendered, body: dict[str, Any]) -> str:
    version = rendered.resolved.version
    model = version.model or body.get("model")
    if not model:
        raise BadRequest(
            f'prompt "{version.prompt_id}" version {version.number} sets no model and the request has none: send `model`',
            code="model_required",
            param="model",
        )
    if model.__class__ is not str:
        raise BadRequest("`model` must be a string", code="invalid_model", param="model")
    return model


def assemble(rendered: Rendered, body: dict[str, Any], model: str | None) -> dict[str, Any]:
    """`body` has had its prompt fields taken out. `model` None: leave it out (a preview)."""
    messages = rendered.messages
    extra = body.get("messages")
    if extra is not None:
        if extra.__class__ is not list:
            raise BadRequest("`messages` must be an array of messages", code="invalid_messages", param="messages")
        at = rendered.resolved.version.history_at
        if at is None:
            messages += extra
        else:  # the version's history placeholder says where the conversation goes
            messages[at:at] = extra
    out: dict[str, Any] = {"model": model, "messages": messages} if model is not None else {"messages": messages}
    for key, value in rendered.params.items():
        if key not in body:
            out[key] = value
    for key, value in body.items():
        if key != "model" and key != "messages":
            out[key] = value
    return out


_JSON_SPACE = b" \t\r\n"
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")


def splice_messages(messages: list[dict[str, Any]], raw: msgspec.Raw, at: int | None) -> tuple[bytes | memoryview, ...]:
    """The prompt's rendered `messages` with the request's, given as a raw JSON
    array, placed as `assemble` places them (after them, or at the history
    placeholder `at`), as pieces of one JSON array to send in one writev: the
    request's conversation, however large, is neither decoded nor copied."""
    data = memoryview(raw)
    start, end = 0, len(data)  # the array's brackets, past any whitespace around it
    while start < end and data[start] in _JSON_SPACE:
        start += 1
    while end > start and data[end - 1] in _JSON_SPACE:
        end -= 1
    if end - start < 2 or data[start] != 0x5B or data[end - 1] != 0x5D:  # [ ... ]
        raise BadRequest("`messages` must be an array of messages", code="invalid_messages", param="messages")
    inner = data[start + 1 : end - 1]
    before = encode_json(messages if at is None else messages[:at])[1:-1]
    after = b"" if at is None else encode_json(messages[at:])[1:-1]
    if _NOT_SPACE.search(inner) is None:  # an empty conversation
        return (b"[" + b",".join(part for part in (before, after) if part) + b"]",)
    return (
        b"[" + before + (b"," if before else b""),
        inner,
        (b"," if after else b"") + after + b"]",
    )
