"""Variable declarations compiled into rules, and the per-request check.

All problems of one request are collected and reported together as
`error.details`: `{"variable", "problem", "expected"?}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from promptd.errors import BadRequest

TYPES = ("string", "number", "integer", "boolean", "object", "array", "image", "file")
MEDIA_TYPES = ("image", "file")
# The render context's key for a request's media parts (not a valid variable name),
# and the marker that stands for part N in rendered text until the parts are split out.
MEDIA_KEY = "\x00media"
MEDIA_MARKER = "\x00media:{}\x00"
_MEDIA_PART_TYPES = frozenset({"image_url", "input_image", "file", "input_file"})


def _is_string(value: Any) -> bool:
    return value.__class__ is str


def _is_number(value: Any) -> bool:
    return value.__class__ is int or value.__class__ is float


def _is_integer(value: Any) -> bool:
    return value.__class__ is int or (value.__class__ is float and value.is_integer())


def _is_boolean(value: Any) -> bool:
    return value.__class__ is bool


def _is_object(value: Any) -> bool:
    return value.__class__ is dict


def _is_array(value: Any) -> bool:
    return value.__class__ is list


def _is_any(value: Any) -> bool:
    return True


CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": _is_string,
    "number": _is_number,
    "integer": _is_integer,
    "boolean": _is_boolean,
    "object": _is_object,
    "array": _is_array,
    "any": _is_any,
    "image": _is_any,  # the shape is checked by `media_part`
    "file": _is_any,
}


def media_part(kind: str | None, value: Any) -> dict[str, Any] | None:
    """A media value as a Chat Completions content part (`image_url` or `file`),
    or None when it has the wrong shape. `kind` is the declared type, or None for
    an undeclared variable given an OpenAI part object."""
    if value.__class__ is str:
        if kind == "image" and value.startswith(("https://", "http://", "data:image/")):
            return {"type": "image_url", "image_url": {"url": value}}
        if kind == "file" and value.startswith(("https://", "http://")):
            return {"type": "file", "file": {"file_url": value}}
        if kind == "file" and value.startswith("data:"):
            return {"type": "file", "file": {"file_data": value}}
        return None
    if value.__class__ is not dict:
        return None
    part_type = value.get("type")
    if kind != "file" and part_type == "image_url":
        image = value.get("image_url")
        if image.__class__ is str:
            return {"type": "image_url", "image_url": {"url": image}}
        if image.__class__ is dict and (image.get("url").__class__ is str):
            return {"type": "image_url", "image_url": image}
    if kind != "file" and part_type == "input_image":
        url = value.get("image_url")
        if url.__class__ is str:
            image = {"url": url}
            if value.get("detail") is not None:
                image["detail"] = value["detail"]
            return {"type": "image_url", "image_url": image}
    if kind != "image" and part_type == "file" and value.get("file").__class__ is dict:
        return {"type": "file", "file": value["file"]}
    if kind != "image" and part_type == "input_file":
        file = {k: value[k] for k in ("file_id", "file_data", "file_url", "filename") if value.get(k) is not None}
        if any(k in file for k in ("file_id", "file_data", "file_url")):
            return {"type": "file", "file": file}
    return None


class _Missing:
    """No default. A named singleton, so it stays itself through pickling."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Rule:
    __slots__ = ("name", "type", "check", "default", "required", "enum", "description", "media")

    def __init__(
        self,
        name: str,
        type: str,
        *,
        default: Any = MISSING,
        required: bool = True,
        enum: tuple[Any, ...] | None = None,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.check = CHECKS[type]
        self.default = default
        self.required = required
        self.enum = enum
        self.description = description
        self.media = type in MEDIA_TYPES

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "required": self.required}
        if self.default is not MISSING:
            out["default"] = self.default
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.description is not None:
            out["description"] = self.description
        return out


class Rules:
    """The variables of one prompt version; `apply` validates and fills defaults."""

    __slots__ = ("rules", "used")

    def __init__(self, rules: tuple[Rule, ...], used: frozenset[str] = frozenset()) -> None:
        self.rules = rules
        self.used = used  # the names the version's templates use

    def unused(self, given: dict[str, Any]) -> list[str]:
        """The given variables that no template of the version uses."""
        used = self.used
        return [name for name in given if name not in used]

    def describe(self) -> dict[str, Any]:
        return {rule.name: rule.describe() for rule in self.rules}

    def apply(self, given: dict[str, Any]) -> dict[str, Any]:
        """Return the render context (the caller's values plus defaults), or raise
        `invalid_variables` listing every problem at once."""
        context = given
        problems: list[dict[str, Any]] | None = None
        media: list[dict[str, Any]] | None = None
        for rule in self.rules:
            value = given.get(rule.name, MISSING)
            if value.__class__ is dict and not rule.media and rule.type not in ("object", "any"):
                if value.get("type") == "input_text" and value.get("text").__class__ is str:
                    value = value["text"]  # an OpenAI variable object: the string it holds
                    if context is given:
                        context = dict(given)
                    context[rule.name] = value
            if value is MISSING or value is None:
                if rule.default is not MISSING:
                    if context is given:
                        context = dict(given)
                    context[rule.name] = rule.default
                elif rule.required:
                    problems = problems or []
                    problems.append({"variable": rule.name, "problem": "missing", "expected": rule.type})
            elif rule.media or (
                rule.type == "any" and value.__class__ is dict and value.get("type") in _MEDIA_PART_TYPES
            ):
                part = media_part(rule.type if rule.media else None, value)
                if part is None:
                    problems = problems or []
                    expected = rule.type if rule.media else "an image_url, input_image, file or input_file part"
                    problems.append({"variable": rule.name, "problem": "wrong_type", "expected": expected})
                    continue
                if context is given:
                    context = dict(given)
                if media is None:
                    media = context[MEDIA_KEY] = []
                context[rule.name] = MEDIA_MARKER.format(len(media))
                media.append(part)
            elif rule.type == "any" and value.__class__ is dict and value.get("type") == "input_text":
                if context is given:
                    context = dict(given)
                context[rule.name] = value.get("text") if value.get("text").__class__ is str else ""
            elif not rule.check(value):
                problems = problems or []
                problems.append({"variable": rule.name, "problem": "wrong_type", "expected": rule.type})
            elif rule.enum is not None and value not in rule.enum:
                problems = problems or []
                problems.append({"variable": rule.name, "problem": "not_in_enum", "expected": list(rule.enum)})
        if problems:
            raise invalid_variables(problems)
        return context


def invalid_variables(problems: list[dict[str, Any]]) -> BadRequest:
    parts = []
    for p in problems:
        if p["problem"] == "missing":
            parts.append(f'"{p["variable"]}" is missing')
        elif p["problem"] == "wrong_type":
            parts.append(f'"{p["variable"]}" must be a{"n" if p["expected"][0] in "aeiou" else ""} {p["expected"]}')
        else:
            parts.append(f'"{p["variable"]}" must be one of {", ".join(map(str, p["expected"]))}')
    noun = "problem" if len(problems) == 1 else "problems"
    hint = ""
    if any(p["problem"] == "missing" for p in problems):
        hint = (
            " (send it in `prompt_variables`; to make a variable optional, declare it in the prompt file"
            ' with a `default`, or with `required = false`: [versions.variables] name = { default = "..." })'
        )
    return BadRequest(
        f"{len(problems)} {noun} with prompt variables: " + "; ".join(parts) + hint,
        code="invalid_variables",
        param="prompt_variables",
        details=problems,
    )
