"""Variable declarations compiled into rules, and the per-request check.

All problems of one request are collected and reported together as
`error.details`: `{"variable", "problem", "expected"?}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from promptd.errors import BadRequest

TYPES = ("string", "number", "integer", "boolean", "object", "array")


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
}


class _Missing:
    """No default. A named singleton, so it stays itself through pickling."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Rule:
    __slots__ = ("name", "type", "check", "default", "required", "enum", "description")

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
        for rule in self.rules:
            value = given.get(rule.name, MISSING)
            if value is MISSING or value is None:
                if rule.default is not MISSING:
                    if context is given:
                        context = dict(given)
                    context[rule.name] = rule.default
                elif rule.required:
                    problems = problems or []
                    problems.append({"variable": rule.name, "problem": "missing", "expected": rule.type})
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
