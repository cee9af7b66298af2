"""What every importer shares: the imported prompt's shape, problems with a file
and line, YAML front matter, Picoschema, promptd template text, and the TOML
writer (README "Coming from LiteLLM / Helicone / Langfuse / OpenAI")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptd.prompts.template import NAME


@dataclass
class Problem:
    """A construct with no promptd equivalent (or a file that could not be read)."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class Version:
    number: int
    messages: list[dict[str, Any]]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Imported:
    """One promptd prompt file to write: `source` names where it came from."""

    id: str
    source: str
    versions: list[Version]
    description: str | None = None
    environments: dict[str, int] = field(default_factory=dict)
    line: int | None = None  # where in `source` it starts, for problems about the whole prompt


class Problems(list[Problem]):
    def add(self, file: Path, line: int | None, message: str) -> None:
        self.append(Problem(file, line, message))


# --- YAML front matter ---------------------------------------------------------------

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def split_front_matter(text: str) -> tuple[str, str, int]:
    """(front matter YAML, body, 1-based line where the body starts)."""
    match = _FRONT.match(text)
    if not match:
        return "", text, 1
    return match[1], text[match.end() :], text[: match.end()].count("\n") + 1


def load_yaml(text: str, file: Path, problems: Problems) -> dict[str, Any] | None:
    import yaml  # only `promptd import` needs a YAML parser

    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.add(file, mark.line + 2 if mark else None, f"front matter is not valid YAML: {exc}")
        return None
    if not isinstance(data, dict):
        problems.add(file, 2, "front matter must be a YAML mapping")
        return None
    return data


def yaml_line(front: str, key: str, parent: str | None = None) -> int:
    """The line of a front matter key (the `---` line is 1): a top-level key, or
    with `parent` the first `key:` indented below that top-level key."""
    start = 0
    if parent is not None:
        found = re.search(rf"^{re.escape(parent)}\s*:", front, re.MULTILINE)
        if found is None:
            return 1
        start = found.end()
        match = re.compile(rf"^\s+{re.escape(key)}\s*:", re.MULTILINE).search(front, start)
    else:
        match = re.search(rf"^{re.escape(key)}\s*:", front, re.MULTILINE)
    return front[: match.start()].count("\n") + 2 if match else (front[:start].count("\n") + 2 if start else 1)


# --- Picoschema (dotprompt's input schema) -> promptd variable declarations ----------

_SCALARS = {
    "string": "string",
    "str": "string",
    "number": "number",
    "float": "number",
    "integer": "integer",
    "int": "integer",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
}
_FIELD = re.compile(r"^(?P<name>[^?(]+)(?P<optional>\?)?(?:\((?P<kind>[^,)]+)(?:,\s*(?P<desc>[^)]*))?\))?$")


def picoschema_variables(
    schema: Any, defaults: dict[str, Any], file: Path, line: int, problems: Problems
) -> dict[str, dict[str, Any]]:
    """The top-level fields of an input schema as promptd declarations. Accepts
    Picoschema (`name?: type, description`, `name(array): ...`, `name(enum): [..]`)
    and JSON Schema objects (`type: object` with `properties`)."""
    variables: dict[str, dict[str, Any]] = {}
    if schema is None:
        schema = {}
    if isinstance(schema, dict) and ("properties" in schema or schema.get("type") == "object"):
        required = set(schema.get("required", []))
        for name, prop in (schema.get("properties") or {}).items():
            decl = _json_schema_decl(prop if isinstance(prop, dict) else {}, file, line, name, problems)
            if name not in required:
                decl["required"] = False
            _add(variables, name, decl, file, line, problems)
    elif isinstance(schema, dict):
        for key, value in schema.items():
            match = _FIELD.match(str(key).strip())
            if not match:
                problems.add(file, line, f'input schema field "{key}" is not Picoschema: not imported')
                continue
            name, kind = match["name"].strip(), (match["kind"] or "").strip()
            if name == "*":
                problems.add(file, line, "input schema wildcard field (*) has no promptd equivalent: not imported")
                continue
            decl = _pico_decl(kind, value, file, line, name, match["desc"], problems)
            if decl is None:
                continue
            if match["optional"]:
                decl["required"] = False
            _add(variables, name, decl, file, line, problems)
    else:
        problems.add(file, line, f"input schema {schema!r} is not an object schema: no variables declared from it")
    for name, value in (defaults or {}).items():
        decl = variables.setdefault(name, {"type": _type_of(value)} if _type_of(value) else {})
        decl["default"] = value
        decl.pop("required", None)
    return variables


def _add(variables: dict, name: str, decl: dict, file: Path, line: int, problems: Problems) -> None:
    if not NAME.match(name):
        problems.add(file, line, f'variable name "{name}" is not a promptd name ([A-Za-z_][A-Za-z0-9_]*): not declared')
        return
    if decl.get("type") == "any":
        if decl.get("required") is False:
            problems.add(file, line, f'optional variable "{name}" of type any: promptd declares it required (any JSON)')
        return  # undeclared: any JSON value
    variables[name] = decl


def _pico_decl(
    kind: str, value: Any, file: Path, line: int, name: str, desc: str | None, problems: Problems
) -> dict[str, Any] | None:
    decl: dict[str, Any] = {}
    if kind == "enum":
        if not isinstance(value, list):
            problems.add(file, line, f'"{name}(enum)" needs a list of values: not declared')
            return None
        decl["type"] = _common_type(value) or "string"
        decl["enum"] = value
    elif kind in ("array", "object"):
        decl["type"] = kind
    elif kind:
        problems.add(file, line, f'"{name}({kind})": unknown Picoschema kind, declared as any')
        decl["type"] = "any"
    elif isinstance(value, dict):
        decl["type"] = "object"
    elif isinstance(value, str):
        type_name, _, text = value.partition(",")
        type_name = type_name.strip()
        if type_name == "any":
            decl["type"] = "any"
        elif type_name in _SCALARS:
            decl["type"] = _SCALARS[type_name]
        elif type_name == "null":
            problems.add(file, line, f'"{name}: null" has no promptd type: not declared')
            return None
        else:
            problems.add(
                file, line, f'"{name}: {type_name}": a named schema has no promptd equivalent, declared as any'
            )
            decl["type"] = "any"
        if text.strip():
            desc = desc or text.strip()
    else:
        problems.add(file, line, f'"{name}": schema {value!r} not understood, declared as any')
        decl["type"] = "any"
    if desc:
        decl["description"] = desc.strip()
    return decl


def _json_schema_decl(prop: dict, file: Path, line: int, name: str, problems: Problems) -> dict[str, Any]:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    decl: dict[str, Any] = {"type": _SCALARS.get(kind, "any") if kind else "any"}
    if "enum" in prop:
        decl["enum"] = [v for v in prop["enum"] if v is not None]
        decl["type"] = _common_type(decl["enum"]) or decl["type"]
    if "description" in prop:
        decl["description"] = prop["description"]
    if "default" in prop:
        decl["default"] = prop["default"]
    return decl


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _type_of(value: Any) -> str | None:
    """The promptd variable type of a YAML/JSON value (None for null and the rest)."""
    return _JSON_TYPES.get(type(value))


def _common_type(values: list[Any]) -> str | None:
    types = {_type_of(v) for v in values}
    if types == {"integer", "number"}:
        return "number"
    return types.pop() if len(types) == 1 else None


def picoschema_to_json_schema(schema: Any) -> dict[str, Any]:
    """dotprompt's output schema (Picoschema or JSON Schema) as JSON Schema, per
    the Picoschema spec (google/dotprompt spec/picoschema.yaml)."""
    if isinstance(schema, str):
        type_name, _, desc = schema.partition(",")
        out: dict[str, Any] = {} if type_name.strip() == "any" else {"type": type_name.strip()}
        if desc.strip():
            out["description"] = desc.strip()
        return out
    if not isinstance(schema, dict):
        return {}
    if "properties" in schema or schema.get("type") in ("object", "array", "string", "number", "integer", "boolean"):
        if "properties" in schema and "type" not in schema:
            return {"type": "object", **schema}
        return schema
    properties: dict[str, Any] = {}
    required: list[str] = []
    out = {"type": "object", "properties": properties, "additionalProperties": False}
    for key, value in schema.items():
        match = _FIELD.match(str(key).strip())
        if not match:
            continue
        name, kind, desc = match["name"].strip(), (match["kind"] or "").strip(), match["desc"]
        if name == "*":
            out["additionalProperties"] = picoschema_to_json_schema(value)
            continue
        if kind == "array":
            prop = {"type": "array", "items": picoschema_to_json_schema(value)}
        elif kind == "object":
            prop = picoschema_to_json_schema(value)
        elif kind == "enum":
            prop = {"enum": list(value) + ([None] if match["optional"] else [])}
        else:
            prop = picoschema_to_json_schema(value)
        if desc:
            prop["description"] = desc.strip()
        if match["optional"]:
            if "type" in prop and kind != "enum":
                prop["type"] = [prop["type"], "null"]
        else:
            required.append(name)
        properties[name] = prop
    if required:
        out["required"] = required
    return out


# --- promptd template text ------------------------------------------------------------------


class TemplateText:
    """promptd template text built piece by piece: literal text escaped, paths
    (`a.b.c`) as nested sections."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, literal: str) -> None:
        self.parts.append(literal.replace("{{", "\\{{"))

    def var(self, path: list[str]) -> None:
        if not path:
            self.parts.append("{{.}}")
            return
        *outer, last = path
        self.parts.append("".join(f"{{{{#{p}}}}}" for p in outer) + f"{{{{{last}}}}}")
        self.parts.append("".join(f"{{{{/{p}}}}}" for p in reversed(outer)))

    def open(self, name: str, inverted: bool = False) -> None:
        self.parts.append(f"{{{{{'^' if inverted else '#'}{name}}}}}")

    def close(self, name: str) -> None:
        self.parts.append(f"{{{{/{name}}}}}")

    def raw(self, text: str) -> None:
        self.parts.append(text)

    def value(self) -> str:
        return "".join(self.parts)


def valid_path(path: list[str]) -> bool:
    return all(NAME.match(p) for p in path)


# --- TOML out -----------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str, multiline: bool = False) -> str:
    if multiline and "\n" in text:
        body = text.replace("\\", "\\\\").replace('"""', '""\\"')
        body = "".join(c if c in "\n\t" or (ord(c) >= 0x20 and ord(c) != 0x7F) else f"\\u{ord(c):04x}" for c in body)
        if body.endswith('"'):
            body = body[:-1] + '\\"'
        return f'"""\n{body}"""'
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise ValueError(f"{value!r} cannot be written as TOML")


def to_toml(prompt: Imported, header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f"id = {_string(prompt.id)}")
    if prompt.description:
        lines.append(f"description = {_string(prompt.description)}")
    if prompt.environments:
        lines += ["", "[environments]"]
        lines += [f"{_key(name)} = {number}" for name, number in prompt.environments.items()]
    for version in prompt.versions:
        lines += ["", "[[versions]]", f"version = {version.number}"]
        if version.model:
            lines.append(f"model = {_string(version.model)}")
        for message in version.messages:
            lines += ["", "[[versions.messages]]"]
            for key, value in message.items():
                text = _string(value, multiline=True) if isinstance(value, str) else _value(value)
                lines.append(f"{key} = {text}")
        if version.params:
            lines += ["", "[versions.params]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in version.params.items()]
        if version.variables:
            lines += ["", "[versions.variables]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in version.variables.items()]
    return "\n".join(lines) + "\n"
