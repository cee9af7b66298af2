"""LiteLLM `.prompt` files (its dotprompt integration) -> promptd prompts.

LiteLLM reads YAML front matter (`model`, `input.schema`, and every other key is
sent as a request parameter), renders the stripped body with Jinja2 (`{{ var }}`,
`{% if %}`, `{% for %}`), then splits the text into messages at lines starting
with `System:`, `User:` or `Assistant:` (each line stripped; text before any
prefix is a user message). `name.v2.prompt` is version 2 of `name`; `name.prompt`
is what a request without a version gets, so it becomes the latest version.
Filters, expressions, `elif`, macros and the like are reported with their line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptd.importers.common import (
    Imported,
    Problems,
    TemplateText,
    Version,
    load_yaml,
    picoschema_variables,
    split_front_matter,
    valid_path,
    yaml_line,
)

SUFFIX = ".prompt"
ROLE_PREFIXES = (("System:", "system"), ("User:", "user"), ("Assistant:", "assistant"))
_VERSIONED = re.compile(r"^(?P<id>.+)\.v(?P<version>\d+)$")
_TAG = re.compile(r"\{\{(-?)([\s\S]*?)(-?)\}\}|\{%(-?)([\s\S]*?)(-?)%\}|\{#[\s\S]*?#\}")
_NOT_PARAMS = {"model", "input", "output", "description"}


@dataclass
class _Block:
    kind: str  # if, for, or an untranslated statement
    name: str | None  # the section it became
    loop_var: str | None = None


class Translator:
    def __init__(self, file: Path, problems: Problems) -> None:
        self.file = file
        self.problems = problems

    def report(self, line: int, message: str) -> None:
        self.problems.add(self.file, line, message)

    def template(self, body: str, first_line: int) -> str:
        """The Jinja body as promptd template text (roles are split afterwards)."""
        out = TemplateText()
        blocks: list[_Block] = []
        pieces: list[tuple[str, Any, int]] = []
        position = 0
        for match in _TAG.finditer(body):
            pieces.append(("text", body[position : match.start()], 0))
            line = first_line + body.count("\n", 0, match.start())
            if match.group(2) is not None:
                pieces.append(("expr", match.group(2).strip(), line))
                trims = (match.group(1), match.group(3))
            elif match.group(5) is not None:
                pieces.append(("stmt", match.group(5).strip(), line))
                trims = (match.group(4), match.group(6))
            else:
                pieces.append(("comment", None, line))
                trims = ("", "")
            if trims[0] and pieces[-2][0] == "text":
                pieces[-2] = ("text", pieces[-2][1].rstrip(), 0)
            if trims[1]:
                pieces.append(("ltrim", None, 0))
            position = match.end()
        pieces.append(("text", body[position:], 0))
        strip_next = False
        for kind, value, line in pieces:
            if kind == "ltrim":
                strip_next = True
                continue
            if kind == "text":
                out.text(value.lstrip() if strip_next else value)
            elif kind == "expr":
                self.expression(value, line, out, blocks)
            elif kind == "stmt":
                self.statement(value, line, out, blocks)
            strip_next = False
        for block in blocks:
            self.report(first_line, f"{{% {block.kind} %}} is never closed")
        return out.value()

    def path(self, text: str, line: int, blocks: list[_Block]) -> list[str] | None:
        parts = text.split(".")
        loops = [b.loop_var for b in blocks if b.loop_var]
        if parts[0] == "loop" and loops:
            self.report(line, f"{{{{ {text} }}}}: Jinja's loop variables have no promptd equivalent; not translated")
            return None
        if parts[0] in loops:
            if parts[0] != loops[-1]:
                self.report(line, f"{{{{ {text} }}}}: an outer loop's item inside an inner loop; not translated")
                return None
            parts = parts[1:]
        if not valid_path(parts):
            self.report(line, f'{{{{ {text} }}}}: "{text}" is not a plain variable; not translated')
            return None
        return parts

    def expression(self, text: str, line: int, out: TemplateText, blocks: list[_Block]) -> None:
        if "|" in text:
            self.report(line, f"{{{{ {text} }}}}: Jinja filters have no promptd equivalent; not translated")
            return
        if not re.fullmatch(r"[A-Za-z_][\w.]*", text):
            self.report(line, f"{{{{ {text} }}}}: Jinja expressions have no promptd equivalent; not translated")
            return
        path = self.path(text, line, blocks)
        if path is not None:
            out.var(path)

    def statement(self, text: str, line: int, out: TemplateText, blocks: list[_Block]) -> None:
        words = text.split()
        keyword = words[0] if words else ""
        if keyword == "if":
            condition = text[2:].strip()
            match = re.fullmatch(r"(not\s+)?([A-Za-z_][\w.]*)", condition)
            path = self.path(match[2], line, blocks) if match else None
            if match is None:
                self.report(
                    line,
                    f"{{% {text} %}}: only `if name` / `if not name` translate; the block's text is kept unconditionally",
                )
            if path is None or len(path) != 1:
                if path is not None:
                    self.report(
                        line,
                        f"{{% {text} %}}: a dotted path cannot be a promptd section; the block's text is kept unconditionally",
                    )
                blocks.append(_Block("if", None))
                return
            out.open(path[0], inverted=bool(match[1]))
            blocks.append(_Block("if" if not match[1] else "if not", path[0]))
        elif keyword == "elif":
            self.report(
                line,
                f"{{% {text} %}}: elif has no promptd equivalent; the rest of the block's text is kept unconditionally",
            )
            if blocks and blocks[-1].name is not None:
                out.close(blocks[-1].name)
                blocks[-1].name = None
        elif keyword == "else":
            if not blocks:
                self.report(line, "{% else %} outside a block")
                return
            block = blocks[-1]
            if block.name is None:
                return
            out.close(block.name)
            out.open(block.name, inverted=block.kind in ("if", "for"))
            block.kind = {"if": "if not", "if not": "if", "for": "if not"}[block.kind]
            block.loop_var = None
        elif keyword in ("endif", "endfor"):
            if not blocks:
                self.report(line, f"{{% {text} %}} closes no block")
                return
            block = blocks.pop()
            if block.name is not None:
                out.close(block.name)
        elif keyword == "for":
            match = re.fullmatch(r"for\s+([A-Za-z_]\w*)\s+in\s+([A-Za-z_][\w.]*)", text)
            path = self.path(match[2], line, blocks) if match else None
            if match is None or path is None or len(path) != 1:
                self.report(line, f"{{% {text} %}}: only `for item in list` translates; the loop body is kept once")
                blocks.append(_Block("for", None))
                return
            out.open(path[0])
            blocks.append(_Block("for", path[0], loop_var=match[1]))
        else:
            self.report(
                line, f'{{% {text} %}}: the Jinja statement "{keyword}" has no promptd equivalent; not translated'
            )
            if keyword in ("macro", "call", "filter", "raw", "set", "block", "with", "autoescape") and not (
                keyword == "set" and "=" in text
            ):
                blocks.append(_Block(keyword, None))
            elif keyword.startswith("end") and blocks and blocks[-1].kind == keyword[3:]:
                blocks.pop()

    def messages(self, template: str, body: str, first_line: int) -> list[dict[str, Any]]:
        """LiteLLM's split: lines stripped, a role prefix starts a message, each
        message stripped. Role lines inside a section are reported."""
        messages: list[dict[str, Any]] = []
        role: str | None = None
        lines: list[str] = []
        depth = 0
        source_lines = body.split("\n")
        for index, raw in enumerate(template.split("\n")):
            line = raw.strip()
            prefix = next(((p, r) for p, r in ROLE_PREFIXES if line.startswith(p)), None)
            if prefix is not None and depth:
                source_line = first_line + min(index, len(source_lines) - 1)
                self.report(
                    source_line,
                    f'"{prefix[0]}" inside {{% if %}}/{{% for %}}: promptd\'s messages are fixed; kept as text',
                )
                prefix = None
            if prefix is not None:
                if role is not None and lines:
                    messages.append({"role": role, "content": "\n".join(lines).strip()})
                role, lines = prefix[1], [line[len(prefix[0]) :].strip()]
            elif role is None:
                role, lines = "user", [line]
            else:
                lines.append(line)
            depth += len(re.findall(r"(?<!\\)\{\{[#^]", raw)) - len(re.findall(r"(?<!\\)\{\{/", raw))
        if role is not None:
            content = "\n".join(lines).strip()
            if content:
                messages.append({"role": role, "content": content})
        for message in messages:
            message["content"] = _rotate_trailing_section(message["content"])
        return messages


_TRAILING_CLOSE = re.compile(r"\{\{/([A-Za-z_][A-Za-z0-9_]*)\}\}$")


def _rotate_trailing_section(content: str) -> str:
    """LiteLLM strips each message after rendering, so a message ending in a
    section must not end in the whitespace around it: `A\n{{#x}}\nB\n{{/x}}`
    renders like `A{{#x}}\n\nB{{/x}}` once stripped, for every value of x (for a
    list, when the whitespace before and after the body are the same)."""
    match = _TRAILING_CLOSE.search(content)
    if match is None:
        return content
    name = match[1]
    depth, position = 0, match.start()
    for tag in reversed(list(re.finditer(r"(?<!\\)\{\{([#^/])" + re.escape(name) + r"\}\}", content[: match.start()]))):
        if tag[1] == "/":
            depth += 1
        elif depth:
            depth -= 1
        else:
            position = tag.start()
            open_tag = tag[0]
            break
    else:
        return content
    before, body = content[:position], content[position + len(open_tag) : match.start()]
    if before.strip() == "" or before.rstrip() == before and body.rstrip() == body:
        return content
    moved = before[len(before.rstrip()) :]
    return before.rstrip() + open_tag + moved + body.rstrip() + match[0]


def prompt_key(path: Path) -> tuple[str, int | None]:
    stem = path.name[: -len(SUFFIX)]
    match = _VERSIONED.match(stem)
    return (match["id"], int(match["version"])) if match else (stem, None)


def import_file(path: Path, number: int, problems: Problems) -> tuple[Version, str | None] | None:
    text = path.read_text(encoding="utf-8")
    front, body, body_line = split_front_matter(text)
    meta = load_yaml(front, path, problems)
    if meta is None:
        return None
    stripped = body.strip()
    body_line += body[: len(body) - len(body.lstrip())].count("\n")
    version = Version(number=number, messages=[])
    if meta.get("model") is not None:
        version.model = str(meta["model"])
    for key, value in meta.items():
        if key not in _NOT_PARAMS:
            version.params[key] = value  # LiteLLM sends every other front matter key as a parameter
    input_spec = meta.get("input") or {}
    version.variables = picoschema_variables(
        input_spec.get("schema"), input_spec.get("default") or {}, path, yaml_line(front, "input"), problems
    )
    if meta.get("output"):
        problems.add(
            path,
            yaml_line(front, "output"),
            "output: LiteLLM does not send it with a request; not imported (set params.response_format to use one)",
        )
    translator = Translator(path, problems)
    template = translator.template(stripped, body_line)
    version.messages = translator.messages(template, stripped, body_line) or [{"role": "user", "content": ""}]
    description = meta.get("description")
    return version, description if isinstance(description, str) else None


def discover(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.glob(f"*{SUFFIX}") if p.is_file())
    return [source]


def import_all(files: list[Path], problems: Problems) -> list[Imported]:
    """Files of one prompt id become its versions: `name.vN` is version N, and
    `name` (unversioned) the version after the highest N."""
    groups: dict[str, list[tuple[int | None, Path]]] = {}
    for path in files:
        prompt_id, number = prompt_key(path)
        groups.setdefault(prompt_id, []).append((number, path))
    out = []
    for prompt_id, members in sorted(groups.items()):
        numbered = [n for n, _ in members if n is not None]
        base = max(numbered, default=0) + 1
        versions, description, sources = [], None, []
        for number, path in sorted(members, key=lambda m: (m[0] is None, m[0] or 0)):
            result = import_file(path, number if number is not None else base, problems)
            if result is None:
                continue
            version, text = result
            versions.append(version)
            description = text or description
            sources.append(str(path))
        if versions:
            out.append(Imported(id=prompt_id, source=", ".join(sources), versions=versions, description=description))
    return out
