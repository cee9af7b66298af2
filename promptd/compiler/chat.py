"""The Chat Completions assembly (README "Compilation and merge").

The prompt's rendered messages, then the request's; the version's model, else
the request's; the version's params as defaults under the request's; every
other request field forwarded unchanged.
"""

from __future__ import annotations

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


def splice_messages(messages: list[dict[str, Any]], raw: msgspec.Raw, at: int | None) -> msgspec.Raw:
    """The prompt's rendered `messages` with the request's, given as a raw JSON
    array, placed as `assemble` places them (after them, or at the history
    placeholder `at`), without decoding the request's: a large conversation is
    copied, not rebuilt."""
    data = bytes(raw).strip()
    if data[:1] != b"[" or data[-1:] != b"]":
        raise BadRequest("`messages` must be an array of messages", code="invalid_messages", param="messages")
    inner = data[1:-1].strip()
    before = messages if at is None else messages[:at]
    after = [] if at is None else messages[at:]
    parts = [encode_json(before)[1:-1], inner, encode_json(after)[1:-1]]
    return msgspec.Raw(b"[" + b",".join(part for part in parts if part) + b"]")
