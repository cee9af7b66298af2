"""The template language of README "Templates", parsed once into nodes.

`parse()` runs when a prompt file loads and raises `TemplateSyntaxError` for any
mistake. `Template.render()` only walks the nodes: no parsing, no regex. Values
are inserted as text and never looked at again, so a value holding `{{x}}`
stays literal.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TAG = re.compile(r"\\\{\{|\{\{(?!\{)(.*?)\}\}", re.DOTALL)
HC_TYPES = {"string": "string", "number": "number", "boolean": "boolean"}


class TemplateSyntaxError(ValueError):
    pass


class Var:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Dot:
    """`{{.}}`: the current item of the innermost section."""

    __slots__ = ()


class Section:
    __slots__ = ("name", "inverted", "body")

    def __init__(self, name: str, inverted: bool, body: tuple[Any, ...]) -> None:
        self.name = name
        self.inverted = inverted
        self.body = body


_DOT = Dot()


def to_text(value: Any) -> str:
    """Strings as they are, numbers and booleans as JSON, objects and arrays as compact JSON."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return ""
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, which orjson does not encode
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def is_truthy(value: Any) -> bool:
    """Mustache falsiness: missing, null, false, an empty list and an empty string."""
    return not (value is None or value is False or value == "" or value == [])


class Template:
    """A parsed template. `names` are the variables used outside any section
    (required unless declared otherwise), `sections` the names sections test,
    `inner` the names used only inside sections (they may come from an item),
    `typed` the types declared with `{{hc:name:type}}`."""

    __slots__ = ("source", "nodes", "names", "sections", "inner", "typed", "constant", "_flat")

    def __init__(self, source: str) -> None:
        self.source = source
        self.names: list[str] = []
        self.sections: list[str] = []
        self.inner: list[str] = []
        self.typed: dict[str, str] = {}
        self.nodes = self._parse(source)
        self._flat = all(n.__class__ is str or n.__class__ is Var for n in self.nodes)
        self.constant: str | None = None
        if all(n.__class__ is str for n in self.nodes):
            self.constant = "".join(self.nodes)

    def render(self, variables: dict[str, Any]) -> str:
        if self.constant is not None:
            return self.constant
        if self._flat:
            return "".join([n if n.__class__ is str else to_text(variables.get(n.name)) for n in self.nodes])
        out: list[str] = []
        _render(self.nodes, [variables], out)
        return "".join(out)

    @property
    def variables(self) -> set[str]:
        return {*self.names, *self.sections, *self.inner}

    def _parse(self, source: str) -> tuple[Any, ...]:
        # A stack of (section name, inverted, children); the bottom is the template itself.
        stack: list[tuple[str, bool, list[Any]]] = [("", False, [])]
        position = 0
        for match in _TAG.finditer(source):
            self._literal(stack[-1][2], source[position : match.start()])
            position = match.end()
            if match.group(1) is None:  # `\{{`
                stack[-1][2].append("{{")
                continue
            inner = match.group(1).strip()
            sigil = inner[:1]
            if sigil in ("#", "^"):
                name = self._name(inner[1:].strip(), match.group(0))
                (self.sections if len(stack) == 1 else self.inner).append(name)
                stack.append((name, sigil == "^", []))
            elif sigil == "/":
                name = self._name(inner[1:].strip(), match.group(0))
                if len(stack) == 1:
                    raise TemplateSyntaxError(f'closing tag "{{{{/{name}}}}}" has no open section')
                open_name, inverted, body = stack.pop()
                if open_name != name:
                    raise TemplateSyntaxError(f'section "{open_name}" is closed by "{{{{/{name}}}}}"')
                stack[-1][2].append(Section(name, inverted, tuple(body)))
            elif inner == ".":
                if len(stack) == 1:
                    raise TemplateSyntaxError('"{{.}}" is only valid inside a section')
                stack[-1][2].append(_DOT)
            else:
                if inner.startswith("hc:"):
                    name = self._typed(inner, match.group(0))
                else:
                    name = self._name(inner, match.group(0))
                (self.names if len(stack) == 1 else self.inner).append(name)
                stack[-1][2].append(Var(name))
        self._literal(stack[-1][2], source[position:])
        if len(stack) > 1:
            raise TemplateSyntaxError(f'unclosed section "{stack[-1][0]}"')
        return _merge_literals(stack[0][2])

    @staticmethod
    def _literal(nodes: list[Any], text: str) -> None:
        if "{{" in text:
            raise TemplateSyntaxError('unterminated tag: "{{" without "}}" (write \\{{ for a literal "{{")')
        if text:
            nodes.append(text)

    @staticmethod
    def _name(name: str, tag: str) -> str:
        if not NAME.match(name):
            raise TemplateSyntaxError(f'bad variable name in "{tag}"')
        return name

    def _typed(self, inner: str, tag: str) -> str:
        parts = inner.split(":")
        if len(parts) != 3:
            raise TemplateSyntaxError(f'"{tag}" must be {{{{hc:name:type}}}}')
        name = self._name(parts[1].strip(), tag)
        kind = parts[2].strip()
        if kind not in HC_TYPES:
            raise TemplateSyntaxError(f'"{tag}": type must be string, number or boolean')
        if self.typed.get(name, kind) != kind:
            raise TemplateSyntaxError(f'variable "{name}" is typed both {self.typed[name]} and {kind}')
        self.typed[name] = kind
        return name


def _merge_literals(nodes: list[Any]) -> tuple[Any, ...]:
    merged: list[Any] = []
    for node in nodes:
        if node.__class__ is str and merged and merged[-1].__class__ is str:
            merged[-1] += node
        else:
            merged.append(node)
    return tuple(merged)


_MISSING = object()


def _lookup(stack: list[Any], name: str) -> Any:
    for frame in reversed(stack):
        if frame.__class__ is dict:
            value = frame.get(name, _MISSING)
            if value is not _MISSING:
                return value
    return None


def _render(nodes: tuple[Any, ...], stack: list[Any], out: list[str]) -> None:
    for node in nodes:
        cls = node.__class__
        if cls is str:
            out.append(node)
        elif cls is Var:
            out.append(to_text(_lookup(stack, node.name)))
        elif cls is Dot:
            out.append(to_text(stack[-1]))
        else:
            value = _lookup(stack, node.name)
            if node.inverted:
                if not is_truthy(value):
                    _render(node.body, stack, out)
            elif value.__class__ is list:
                for item in value:
                    stack.append(item)
                    _render(node.body, stack, out)
                    stack.pop()
            elif is_truthy(value):
                stack.append(value)
                _render(node.body, stack, out)
                stack.pop()
