"""Langfuse prompt exports -> promptd prompts.

The input is what Langfuse's prompt API or export returns: a JSON list of prompt
versions (`name`, `version`, `type` text|chat, `prompt`, `config`, `labels`), one
such object, or `{"data": [...]}`. Versions of one `name` become one promptd file.
Labels become environments (`latest` is what promptd does without one, so it is
not written; Langfuse serves `production` by default, and so does promptd). A text
prompt is one user message, as LiteLLM's Langfuse integration sends it; a chat
prompt's placeholder message is promptd's history placeholder. `config.model`
is the model, OpenAI parameters in `config` are params, anything else in
`config` is reported. Langfuse's `{{variable}}` templates are promptd's syntax
already (its JS SDK renders Mustache); they are checked by parsing them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promptd.importers.common import Imported, Problems, Version
from promptd.prompts.template import Template, TemplateSyntaxError

SUFFIX = ".json"
OPENAI_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "seed",
        "n",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "modalities",
        "audio",
        "prediction",
        "service_tier",
        "store",
        "metadata",
        "user",
        "web_search_options",
        "verbosity",
    }
)
ROLES = {"system", "developer", "user", "assistant", "tool"}


def discover(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob(f"*{SUFFIX}") if p.is_file())
    return [source]


def _entries(text: str, path: Path, problems: Problems) -> list[tuple[dict[str, Any], int, str]]:
    """(version object, its line, its own JSON text) for every version in the file."""
    decoder = json.JSONDecoder()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(path, exc.lineno, f"not valid JSON: {exc.msg}")
        return []
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        start = text.index("[", text.index('"data"'))
    elif isinstance(data, list):
        start = text.index("[")
    elif isinstance(data, dict):
        return [(data, 1, text)]
    else:
        problems.add(path, 1, "expected a list of Langfuse prompt versions")
        return []
    out = []
    index = start + 1
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            break
        value, end = decoder.raw_decode(text, index)
        line = text.count("\n", 0, index) + 1
        if isinstance(value, dict):
            out.append((value, line, text[index:end]))
        else:
            problems.add(path, line, "a list item that is not a prompt version object: skipped")
        index = end
    return out


def _line_of(key: str, entry_text: str, entry_line: int) -> int:
    found = entry_text.find(f'"{key}"')
    return entry_line + entry_text.count("\n", 0, found) if found >= 0 else entry_line


def _item_lines(key: str, entry_text: str, entry_line: int) -> list[int]:
    """The line of each item of the list under `key` in one version's JSON."""
    found = entry_text.find(f'"{key}"')
    start = entry_text.find("[", found) if found >= 0 else -1
    if start < 0:
        return []
    decoder, lines, index = json.JSONDecoder(), [], start + 1
    while True:
        while index < len(entry_text) and entry_text[index] in " \t\r\n,":
            index += 1
        if index >= len(entry_text) or entry_text[index] == "]":
            return lines
        lines.append(entry_line + entry_text.count("\n", 0, index))
        _, index = decoder.raw_decode(entry_text, index)


def _check_template(text: str, path: Path, line: int, where: str, problems: Problems) -> bool:
    try:
        Template(text)
    except TemplateSyntaxError as exc:
        problems.add(path, line, f"{where}: {exc}; this version is not imported")
        return False
    return True


def _version(entry: dict[str, Any], path: Path, line: int, entry_text: str, problems: Problems) -> Version | None:
    number = entry.get("version")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        problems.add(path, line, f"version {number!r} is not a positive integer: skipped")
        return None
    version = Version(number=number, messages=[])
    kind = entry.get("type", "text")
    prompt = entry.get("prompt")
    prompt_line = _line_of("prompt", entry_text, line)
    if kind == "text":
        if not isinstance(prompt, str):
            problems.add(path, prompt_line, "a text prompt's `prompt` must be a string: skipped")
            return None
        if not _check_template(prompt, path, prompt_line, "prompt", problems):
            return None
        version.messages.append({"role": "user", "content": prompt})
    elif kind == "chat":
        if not isinstance(prompt, list):
            problems.add(path, prompt_line, "a chat prompt's `prompt` must be a list of messages: skipped")
            return None
        placeholders = 0
        item_lines = _item_lines("prompt", entry_text, line)
        for index, message in enumerate(prompt):
            where = f"prompt[{index}]"
            prompt_line = item_lines[index] if index < len(item_lines) else prompt_line
            if not isinstance(message, dict):
                problems.add(path, prompt_line, f"{where} is not a message: skipped")
                continue
            if message.get("type") == "placeholder":
                placeholders += 1
                if placeholders > 1:
                    problems.add(
                        path,
                        prompt_line,
                        f'{where}: a second placeholder ("{message.get("name")}"): promptd has one history placeholder'
                        " per version; not imported",
                    )
                    continue
                version.messages.append({"placeholder": "history"})
                continue
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                problems.add(path, prompt_line, f'{where}: role "{role}" has no promptd equivalent; message skipped')
                continue
            if not isinstance(content, str):
                problems.add(path, prompt_line, f"{where}: content that is not a string is not imported")
                continue
            if not _check_template(content, path, prompt_line, where, problems):
                return None
            version.messages.append({"role": role, "content": content})
    else:
        problems.add(path, line, f'type "{kind}" is neither text nor chat: skipped')
        return None
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        problems.add(path, _line_of("config", entry_text, line), "config is not an object: not imported")
        config = {}
    for key, value in config.items():
        if key == "model" and isinstance(value, str):
            version.model = value
        elif key in OPENAI_PARAMS:
            version.params[key] = value
        else:
            problems.add(
                path, _line_of(key, entry_text, line), f'config "{key}" is not an OpenAI parameter: not imported'
            )
    if not version.messages:
        version.messages.append({"role": "user", "content": ""})
    return version


def import_all(files: list[Path], problems: Problems) -> list[Imported]:
    by_name: dict[str, Imported] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        for entry, line, entry_text in _entries(text, path, problems):
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                problems.add(path, line, "a prompt version without a name: skipped")
                continue
            version = _version(entry, path, line, entry_text, problems)
            if version is None:
                continue
            prompt = by_name.setdefault(name, Imported(id=name, source=str(path), versions=[], line=line))
            if any(v.number == version.number for v in prompt.versions):
                problems.add(path, line, f'"{name}" version {version.number} appears twice: the second is skipped')
                continue
            prompt.versions.append(version)
            for label in entry.get("labels") or []:
                if label == "latest":
                    continue
                if label in prompt.environments:
                    problems.add(path, line, f'label "{label}" is on two versions of "{name}": the first one is kept')
                    continue
                prompt.environments[label] = version.number
    for prompt in by_name.values():
        prompt.versions.sort(key=lambda v: v.number)
    return list(by_name.values())
