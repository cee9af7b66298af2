"""The Responses API assembly (README "The Responses API"), a sibling of `chat.py`.

The version's leading system/developer messages become `instructions` (the
request's own `instructions` appended after a blank line); its other messages
become input items placed before the request's `input`, and are not sent again
on a turn that continues a stored conversation (`previous_response_id`,
`conversation`). The version's params, written in Chat Completions terms, are
translated; what has no Responses equivalent is not sent and is named in
`dropped`. The request's own fields are sent as written, and win.
"""

from __future__ import annotations

from typing import Any

from promptd.compiler.render import Rendered
from promptd.errors import BadRequest

# Chat Completions params that the Responses API takes under the same name.
SAME_NAME = frozenset(
    {
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "store",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
        "top_logprobs",
        "stream",
        "background",
        "include",
        "truncation",
        "max_tool_calls",
        "text",
        "reasoning",
        "max_output_tokens",
        "instructions",
    }
)
_LEADING_ROLES = ("system", "developer")


class ResponsesBody:
    __slots__ = ("body", "dropped")

    def __init__(self, body: dict[str, Any], dropped: list[str]) -> None:
        self.body = body
        self.dropped = dropped  # the prompt's params with no Responses equivalent, not sent


def assemble(rendered: Rendered, body: dict[str, Any], model: str | None) -> ResponsesBody:
    """`body` has had its prompt fields taken out. `model` None: leave it out (a preview)."""
    messages = rendered.messages
    split = 0
    while split < len(messages) and messages[split]["role"] in _LEADING_ROLES:
        split += 1
    texts = [_text_of(message) for message in messages[:split]]
    request_instructions = body.get("instructions")
    if request_instructions is not None:
        if request_instructions.__class__ is not str:
            raise BadRequest("`instructions` must be a string", code="invalid_messages", param="instructions")
        texts.append(request_instructions)
    out: dict[str, Any] = {} if model is None else {"model": model}
    if texts:
        out["instructions"] = "\n\n".join(texts)

    continued = body.get("previous_response_id") is not None or body.get("conversation") is not None
    at = rendered.resolved.version.history_at
    before = messages[split:] if at is None else messages[split : max(at, split)]
    after = [] if at is None else messages[max(at, split) :]
    items = [] if continued else _items(before)
    given = body.get("input")
    if given is None:
        pass
    elif given.__class__ is str:
        items.append({"role": "user", "content": given})
    elif given.__class__ is list:
        items += given
    else:
        raise BadRequest("`input` must be a string or an array of input items", code="invalid_messages", param="input")
    if not continued:  # the prompt's messages after the history placeholder
        items += _items(after)
    if items or given is not None:
        out["input"] = items

    version = rendered.resolved.version
    if rendered.params is version.params:  # static params: translated once per version
        translated = version.derived.get("responses_params")
        if translated is None:
            translated = version.derived["responses_params"] = translate_params(version.params)
        params, dropped = translated
    else:
        params, dropped = translate_params(rendered.params)
    for key, value in params.items():
        if key not in body:
            out[key] = value
    for key, value in body.items():
        if key not in ("model", "input", "instructions"):
            out[key] = value
    return ResponsesBody(out, dropped)


def translate_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Chat Completions params -> Responses params, and the names that have no equivalent."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in params.items():
        if key in ("max_tokens", "max_completion_tokens"):
            out["max_output_tokens"] = value
        elif key == "response_format":
            out["text"] = {**out.get("text", {}), "format": _text_format(value)}
        elif key == "verbosity":
            out["text"] = {**out.get("text", {}), "verbosity": value}
        elif key == "reasoning_effort":
            out["reasoning"] = {**out.get("reasoning", {}), "effort": value}
        elif key == "tools":
            out["tools"] = [_tool(tool) for tool in value] if value.__class__ is list else value
        elif key == "tool_choice":
            out["tool_choice"] = _tool_choice(value)
        elif key in SAME_NAME:
            out[key] = value
        else:
            dropped.append(key)
    return out, dropped


def _text_format(value: Any) -> Any:
    """`response_format` -> `text.format`: a json_schema's inner object is flattened."""
    if value.__class__ is dict and value.get("type") == "json_schema" and value.get("json_schema").__class__ is dict:
        return {"type": "json_schema", **value["json_schema"]}
    return value


def _tool(tool: Any) -> Any:
    """A function tool `{type: function, function: {name, ...}}` -> `{type: function, name, ...}`."""
    if tool.__class__ is dict and tool.get("type") == "function" and tool.get("function").__class__ is dict:
        return {"type": "function", **tool["function"]}
    return tool


def _tool_choice(value: Any) -> Any:
    if value.__class__ is dict and value.get("type") == "function" and value.get("function").__class__ is dict:
        return {"type": "function", "name": value["function"].get("name")}
    return value


def _text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if content.__class__ is str:
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages -> Responses input items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        items += _input_items(message)
    return items


def _input_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    role = message["role"]
    content = message["content"]
    if role == "tool":
        output = content if content.__class__ is str else _text_of(message)
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": output}]
    items: list[dict[str, Any]] = []
    if role == "assistant":
        text = content if content.__class__ is str else _text_of(message)
        if text:
            items.append({"role": "assistant", "content": text})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments", ""),
                }
            )
        return items
    return [{"role": role, "content": _input_parts(content)}]


def _input_parts(content: Any) -> list[dict[str, Any]]:
    """Chat content -> Responses input parts (`input_text`, `input_image`, `input_file`)."""
    if content.__class__ is str:
        return [{"type": "input_text", "text": content}]
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if image.__class__ is dict else image
            converted: dict[str, Any] = {"type": "input_image", "image_url": url}
            if image.__class__ is dict and "detail" in image:
                converted["detail"] = image["detail"]
            parts.append(converted)
        elif kind == "file":
            file = part.get("file") or {}
            parts.append({"type": "input_file", **file})
        else:
            parts.append(part)
    return parts
