"""Google dotprompt (Genkit) `.prompt` files -> promptd prompts.

The front matter gives the model, `config` (Gemini-style names, mapped to OpenAI
parameters), the input schema (Picoschema) with defaults, and `output` (a JSON
schema for `response_format`). The template is the Handlebars subset dotprompt
uses, translated, never copied: variables, `#if`/`#unless`/`#each`/`#with` to
sections, `{{role}}` to messages (`model` -> `assistant`), `{{history}}` to the
history placeholder, `{{media}}` to a media variable, `{{> name}}` to a promptd
partial (`_name.prompt` files become prompts of their own). Handlebars' rule that
a block tag alone on its line takes the line with it is applied here, because
promptd's sections do not do it. Everything else is reported with its line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptd.importers.common import (
    Imported,
    Problems,
    TemplateText,
    Version,
    load_yaml,
    picoschema_to_json_schema,
    picoschema_variables,
    split_front_matter,
    valid_path,
    yaml_line,
)

SUFFIX = ".prompt"

# dotprompt/Genkit `config` -> OpenAI Chat Completions parameters.
CONFIG_NAMES = {
    "temperature": "temperature",
    "maxOutputTokens": "max_tokens",
    "topP": "top_p",
    "stopSequences": "stop",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
    "seed": "seed",
    "candidateCount": "n",
    # Already OpenAI's names (Genkit passes a plugin's own config through).
    "max_tokens": "max_tokens",
    "top_p": "top_p",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "max_completion_tokens": "max_completion_tokens",
    "reasoning_effort": "reasoning_effort",
}
ROLES = {"system": "system", "user": "user", "model": "assistant", "assistant": "assistant", "tool": "tool"}
_KNOWN_KEYS = {"model", "config", "input", "output", "description", "name", "variant", "version"}

_TAG = re.compile(r"\\\{\{|\{\{(~?)(\{?)(!--[\s\S]*?--|![\s\S]*?|[\s\S]*?)\}?(~?)\}\}")
_BLOCKISH = ("open", "close", "else", "comment")


@dataclass
class Token:
    kind: str  # text, var, open, close, else, comment, role, history, media, partial, json, section, other
    value: Any
    line: int
    left_trim: bool = False
    right_trim: bool = False


def tokenize(body: str, first_line: int) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in _TAG.finditer(body):
        if match.start() > position:
            tokens.append(Token("text", body[position : match.start()], 0))
        line = first_line + body.count("\n", 0, match.start())
        position = match.end()
        if match.group(0) == "\\{{":
            tokens.append(Token("text", "{{", line))
            continue
        inner = match.group(3).strip()
        token = _classify(inner, line)
        token.left_trim, token.right_trim = bool(match.group(1)), bool(match.group(4))
        tokens.append(token)
    if position < len(body):
        tokens.append(Token("text", body[position:], 0))
    _apply_whitespace_rules(tokens)
    return [t for t in tokens if not (t.kind == "text" and t.value == "")]


def _classify(inner: str, line: int) -> Token:
    if inner.startswith("!"):
        return Token("comment", inner, line)
    if inner.startswith("#") or (inner.startswith("^") and inner[1:].strip()):
        words = _words(inner[1:])
        return Token("open", (inner[0], words), line)
    if inner.startswith("/"):
        return Token("close", inner[1:].strip(), line)
    if inner in ("else", "^"):
        return Token("else", inner, line)
    if inner.startswith(">"):
        return Token("partial", _words(inner[1:]), line)
    words = _words(inner)
    if not words:
        return Token("other", inner, line)
    head = words[0]
    if head == "role" and len(words) == 2:
        return Token("role", words[1], line)
    if head == "history" and len(words) == 1:
        return Token("history", None, line)
    if head == "media":
        return Token("media", _hash_args(words[1:]), line)
    if head == "json":
        return Token("json", words[1:], line)
    if head == "section":
        return Token("section", words[1:], line)
    if len(words) == 1:
        return Token("var", head, line)
    return Token("other", inner, line)


def _words(text: str) -> list[str]:
    try:
        lexer = shlex.shlex(text.strip(), posix=False)
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:
        return text.split()


def _hash_args(words: list[str]) -> dict[str, str]:
    out = {}
    for word in words:
        key, _, value = word.partition("=")
        out[key] = value
    return out


def _unquote(word: str) -> str | None:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        return word[1:-1]
    return None


def _apply_whitespace_rules(tokens: list[Token]) -> None:
    """Handlebars' `~` trims, and its standalone rule: a block tag or comment
    alone on its line removes that line's whitespace and line break. Which tags
    stand alone is decided on the text as written, before any trimming."""

    def text_at(index: int) -> Token | None:
        return tokens[index] if 0 <= index < len(tokens) and tokens[index].kind == "text" else None

    standalone = []
    for index, token in enumerate(tokens):
        if token.kind not in _BLOCKISH:
            continue
        before, after = text_at(index - 1), text_at(index + 1)
        starts_line = index == 0 or (
            before is not None
            and before.value.rpartition("\n")[2].strip(" \t") == ""
            and ("\n" in before.value or index == 1)
        )
        ends_line = index == len(tokens) - 1 or (
            after is not None
            and after.value.partition("\n")[0].strip(" \t\r") == ""
            and ("\n" in after.value or index + 1 == len(tokens) - 1)
        )
        if starts_line and ends_line:
            standalone.append(index)
    for index in standalone:
        before, after = text_at(index - 1), text_at(index + 1)
        if before is not None:
            before.value = before.value[: before.value.rfind("\n") + 1]
        if after is not None:
            after.value = after.value.partition("\n")[2] if "\n" in after.value else ""
    for index, token in enumerate(tokens):
        before, after = text_at(index - 1), text_at(index + 1)
        if token.left_trim and before is not None:
            before.value = before.value.rstrip()
        if token.right_trim and after is not None:
            after.value = after.value.lstrip()


@dataclass
class _Block:
    helper: str  # if, unless, each, with, or a helper promptd cannot translate
    name: str | None  # the section it became (None: not translated)
    alias: str | None = None  # `as |alias|` of #each


class Translator:
    """One template (or partial) -> promptd messages, reporting what cannot be said."""

    def __init__(self, file: Path, variables: dict[str, dict[str, Any]], problems: Problems) -> None:
        self.file = file
        self.variables = variables  # declarations so far; media variables are added
        self.problems = problems
        self.partials: set[str] = set()

    def report(self, line: int, message: str) -> None:
        self.problems.add(self.file, line, message)

    def messages(self, tokens: list[Token]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        role = "user"
        current = TemplateText()
        blocks: list[_Block] = []

        def flush(next_role: str) -> None:
            nonlocal current, role
            content = current.value()
            if content.strip():
                messages.append({"role": role, "content": content})
            current, role = TemplateText(), next_role

        for token in tokens:
            if token.kind == "role":
                name = _unquote(token.value)
                if blocks:
                    self.report(token.line, "{{role}} inside a block: promptd's messages are fixed; not translated")
                elif name not in ROLES:
                    self.report(token.line, f"{{{{role {token.value}}}}}: unknown role; not translated")
                else:
                    flush(ROLES[name])
            elif token.kind == "history":
                if blocks:
                    self.report(token.line, "{{history}} inside a block: not translated")
                elif any("placeholder" in m for m in messages):
                    self.report(token.line, "a second {{history}}: promptd has one history placeholder per version")
                else:
                    flush("assistant")  # dotprompt: text after the history is the model's
                    messages.append({"placeholder": "history"})
            else:
                self.emit(token, current, blocks)
        for block in blocks:
            self.report(0, f"{{{{#{block.helper}}}}} is never closed")
        flush("user")
        return messages

    def emit(self, token: Token, out: TemplateText, blocks: list[_Block]) -> None:
        kind, line = token.kind, token.line
        if kind == "text":
            out.text(token.value)
        elif kind == "comment":
            pass  # renders nothing in dotprompt either
        elif kind == "var":
            path = self.path(token.value, line, blocks)
            if path is not None:
                out.var(path)
        elif kind == "json":
            self.json(token, out, blocks)
        elif kind == "open":
            self.open(token, out, blocks)
        elif kind == "else":
            self.otherwise(token, out, blocks)
        elif kind == "close":
            self.close(token, out, blocks)
        elif kind == "media":
            self.media(token, out, blocks)
        elif kind == "partial":
            words = token.value
            if len(words) != 1:
                self.report(
                    line,
                    f"{{{{> {' '.join(words)}}}}}: partials with arguments have no promptd equivalent; not translated",
                )
            else:
                self.partials.add(words[0])
                out.raw(f"{{{{> {words[0]}}}}}")
        elif kind == "section":
            self.report(
                line,
                f"{{{{section {' '.join(token.value)}}}}}: sections have no promptd equivalent; the marker is dropped",
            )
        else:
            self.report(
                line,
                f"{{{{{token.value}}}}}: custom helpers and expressions have no promptd equivalent; not translated",
            )

    def path(self, text: str, line: int, blocks: list[_Block]) -> list[str] | None:
        """A Handlebars path as promptd names ([] is the current item)."""
        if text.startswith("@"):
            if text.startswith("@root."):
                text = text[len("@root.") :]
            else:
                self.report(
                    line,
                    f"{{{{{text}}}}}: data variables (@index, @key, @first, ...) have no promptd equivalent; not translated",
                )
                return None
        while text.startswith("../"):
            text = text[3:]
        aliases = {b.alias for b in blocks if b.alias}
        parts = [p for p in text.replace("/", ".").split(".") if p]
        if parts and (parts[0] == "this" or parts[0] in aliases):
            if not any(b.helper in ("each", "with") for b in blocks):
                self.report(line, f"{{{{{text}}}}} outside #each/#with: not translated")
                return None
            parts = parts[1:]
        if not valid_path(parts):
            self.report(line, f'{{{{{text}}}}}: "{text}" is not a promptd variable name; not translated')
            return None
        return parts

    def json(self, token: Token, out: TemplateText, blocks: list[_Block]) -> None:
        words = token.value
        if len(words) != 1:
            self.report(
                token.line,
                f"{{{{json {' '.join(words)}}}}}: json with options (indent) has no promptd equivalent; written compact",
            )
        path = self.path(words[0], token.line, blocks) if words else None
        if path is None:
            return
        declared = self.variables.get(path[0], {}).get("type") if len(path) == 1 else None
        if declared not in ("object", "array", "number", "integer", "boolean"):
            self.report(
                token.line,
                f"{{{{json {words[0]}}}}}: promptd writes objects, arrays, numbers and booleans as JSON but strings as they are;"
                " declare the variable's type in the input schema to be sure",
            )
        out.var(path)

    def open(self, token: Token, out: TemplateText, blocks: list[_Block]) -> None:
        sigil, words = token.value
        line = token.line
        helper = words[0] if words else ""
        if sigil == "^":  # {{^name}}: Handlebars' inverted section, as Mustache's
            path = self.path(helper, line, blocks)
            if path is None or len(path) != 1:
                blocks.append(_Block("^", None))
                return
            out.open(path[0], inverted=True)
            blocks.append(_Block("^", path[0]))
            return
        if helper in ("if", "unless", "each", "with") and len(words) >= 2:
            alias = None
            if helper == "each" and len(words) > 2:
                match = re.fullmatch(r"as\s*\|\s*(\w+)\s*\|", " ".join(words[2:]))
                if match:
                    alias = match[1]
                else:
                    self.report(
                        line, f"{{{{#each {' '.join(words[1:])}}}}}: only `as |item|` block parameters translate"
                    )
            elif len(words) > 2:
                self.report(
                    line,
                    f"{{{{#{helper} {' '.join(words[1:])}}}}}: only one plain variable translates; block kept untranslated",
                )
                blocks.append(_Block(helper, None))
                return
            path = self.path(words[1], line, blocks)
            if path is None or len(path) != 1:
                if path is not None:
                    self.report(
                        line,
                        f"{{{{#{helper} {words[1]}}}}}: a dotted path cannot be a promptd section; block kept untranslated",
                    )
                blocks.append(_Block(helper, None))
                return
            name = path[0]
            declared = self.variables.get(name, {}).get("type")
            if helper in ("if", "unless") and declared == "array":
                self.report(
                    line, f"{{{{#{helper} {name}}}}} on an array: promptd's section would repeat its body per item"
                )
            if helper in ("if", "unless") and declared in ("number", "integer"):
                self.report(
                    line,
                    f"{{{{#{helper} {name}}}}} on a number: Handlebars treats 0 as false, promptd as a value (true)",
                )
            if helper == "each" and declared == "object":
                self.report(line, f"{{{{#each {name}}}}} over an object's keys has no promptd equivalent")
            out.open(name, inverted=helper == "unless")
            blocks.append(_Block(helper, name, alias))
            return
        self.report(
            line,
            f'{{{{#{" ".join(words)}}}}}: block helper "{helper}" has no promptd equivalent; its body is kept, unconditionally',
        )
        blocks.append(_Block(helper, None))

    def otherwise(self, token: Token, out: TemplateText, blocks: list[_Block]) -> None:
        if not blocks:
            self.report(token.line, "{{else}} outside a block")
            return
        block = blocks[-1]
        if block.name is None:
            self.report(token.line, f"{{{{else}}}} of an untranslated #{block.helper}: its body is kept too")
            return
        out.close(block.name)
        out.open(block.name, inverted=block.helper not in ("unless",))
        block.helper = {"unless": "if", "^": "if"}.get(block.helper, "unless")

    def close(self, token: Token, out: TemplateText, blocks: list[_Block]) -> None:
        if not blocks:
            self.report(token.line, f"{{{{/{token.value}}}}} closes no block")
            return
        block = blocks.pop()
        if block.name is not None:
            out.close(block.name)

    def media(self, token: Token, out: TemplateText, blocks: list[_Block]) -> None:
        args = token.value
        url = args.get("url", "")
        if blocks:
            self.report(token.line, "{{media}} inside a block: not translated")
            return
        if not url or _unquote(url) is not None:
            self.report(token.line, "{{media}} with a literal URL: promptd media comes from a variable; not translated")
            return
        if not valid_path([url]):
            self.report(token.line, f"{{{{media url={url}}}}}: not a promptd variable name; not translated")
            return
        content_type = _unquote(args.get("contentType", '"image/"')) or ""
        kind = "image" if content_type.startswith("image/") or "contentType" not in args else "file"
        if "contentType" in args and _unquote(args["contentType"]) is None:
            self.report(
                token.line,
                f"{{{{media contentType={args['contentType']}}}}}: the content type comes from a variable; imported as an image",
            )
            kind = "image"
        decl = self.variables.setdefault(url, {})
        decl["type"] = kind
        out.raw(_MEDIA)
        out.var([url])
        out.raw(_MEDIA)


_MEDIA = "\0media\0"  # brackets a media tag until the message is complete


def _strip_around_media(content: str) -> str:
    """dotprompt drops whitespace-only text parts around a media part; promptd
    would send them, so they are dropped here."""
    pieces = content.split(_MEDIA)
    return "".join(piece for index, piece in enumerate(pieces) if index % 2 or piece.strip())


def import_file(path: Path, problems: Problems, partial_names: set[str]) -> Imported | None:
    text = path.read_text(encoding="utf-8")
    front, body, body_line = split_front_matter(text)
    is_partial = path.name.startswith("_")
    meta = load_yaml(front, path, problems) if not is_partial else {}
    if meta is None:
        return None
    prompt_id = path.name[: -len(SUFFIX)].lstrip("_") if is_partial else path.name[: -len(SUFFIX)]
    version = Version(number=1, messages=[])
    if is_partial:  # partials are templates only, no front matter (dotprompt spec)
        body, body_line = text, 1
    if meta.get("model") is not None:
        version.model = str(meta["model"])
    for key in meta:
        if key not in _KNOWN_KEYS:
            problems.add(path, yaml_line(front, key), f'front matter "{key}" has no promptd equivalent: not imported')
    _config(meta.get("config") or {}, version, path, front, problems)
    input_spec = meta.get("input") or {}
    version.variables = picoschema_variables(
        input_spec.get("schema"), input_spec.get("default") or {}, path, yaml_line(front, "input"), problems
    )
    _output(meta.get("output") or {}, version, prompt_id, path, yaml_line(front, "output"), problems)
    translator = Translator(path, version.variables, problems)
    messages = translator.messages(tokenize(body, body_line))
    for message in messages:
        if "content" in message:
            message["content"] = _strip_around_media(message["content"])
    if is_partial and (len(messages) != 1 or "content" not in messages[0]):
        problems.add(path, 1, "a partial must render one message: not imported")
        return None
    version.messages = messages or [{"role": "user", "content": ""}]
    partial_names.update(translator.partials)
    description = meta.get("description")
    if is_partial:
        description = f"dotprompt partial {path.name}"
    return Imported(id=prompt_id, source=str(path), versions=[version], description=description)


def _config(config: dict[str, Any], version: Version, path: Path, front: str, problems: Problems) -> None:
    if not isinstance(config, dict):
        problems.add(path, yaml_line(front, "config"), "config must be a mapping: not imported")
        return
    for key, value in config.items():
        name = CONFIG_NAMES.get(key)
        if name is None:
            line = yaml_line(front, str(key), parent="config")
            problems.add(path, line, f'config "{key}" has no OpenAI equivalent: not imported')
        else:
            version.params[name] = value


def _output(
    output: dict[str, Any], version: Version, prompt_id: str, path: Path, line: int, problems: Problems
) -> None:
    kind = output.get("format")
    schema = output.get("schema")
    if schema is not None:
        json_schema = picoschema_to_json_schema(schema)
        version.params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": re.sub(r"[^A-Za-z0-9_-]", "_", prompt_id)[:64], "schema": json_schema},
        }
    elif kind == "json":
        version.params["response_format"] = {"type": "json_object"}
    elif kind not in (None, "text"):
        problems.add(path, line, f'output format "{kind}" has no OpenAI equivalent: not imported')
    for key in output:
        if key not in ("format", "schema"):
            problems.add(path, line, f'output "{key}" has no promptd equivalent: not imported')


def discover(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob(f"*{SUFFIX}") if p.is_file())
    return [source]


def import_all(files: list[Path], problems: Problems) -> list[Imported]:
    partial_names: set[str] = set()
    imported = [p for p in (import_file(path, problems, partial_names) for path in files) if p is not None]
    ids = {p.id for p in imported}
    for name in sorted(partial_names - ids):
        problems.add(
            files[0] if len(files) == 1 else files[0].parent,
            None,
            f'partial "{name}" was not among the imported files (_{name}.prompt)',
        )
    return imported
