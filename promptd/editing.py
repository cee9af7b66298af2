"""`promptd promote` and `promptd new-version`: edit a prompt file in place.

TOML keeps its comments and layout (tomlkit for a changed value; a new version
is the source text of the copied one, appended after the last `[[versions]]`),
JSON keeps its indentation. The result is validated (and checked against
`prompts.lock`) before it is written, atomically: a temporary file renamed over
the original, so a running promptd never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import tomlkit

from promptd.errors import ConfigError
from promptd.prompts.files import Prompt, compile_prompt_file
from promptd.prompts.lock import read_lock, violations

_VERSION_LINE = re.compile(r"^(\s*version\s*=\s*)(\d+)(.*)$", re.MULTILINE)


def promote(prompt: Prompt, environment: str, version: int, lock: Path) -> str:
    """Set `environments.ENV = VERSION` in the prompt's file; returns what changed."""
    if version not in prompt.versions:
        raise ConfigError([f'prompt "{prompt.id}" has no version {version} (versions: {_listed(prompt)})'])
    before = prompt.environments.get(environment)
    path = Path(prompt.source)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data, indent = _load_json(text)
        data.setdefault("environments", {})[environment] = version
        new = _dump_json(data, indent, text)
    else:
        document = tomlkit.parse(text)
        if "environments" not in document:
            document["environments"] = tomlkit.table()
        document["environments"][environment] = version  # type: ignore[index]
        new = tomlkit.dumps(document)
    _check_and_write(prompt, path, new, lock)
    was = "unset" if before is None else json.dumps(before)
    return f"{prompt.id}: environments.{environment} {was} -> {version} ({path})"


def new_version(prompt: Prompt, source_version: int | None, lock: Path) -> str:
    """Append version latest+1, a copy of `source_version` (default: latest)."""
    number = source_version if source_version is not None else prompt.latest.number
    if number not in prompt.versions:
        raise ConfigError([f'prompt "{prompt.id}" has no version {number} (versions: {_listed(prompt)})'])
    latest = prompt.latest.number + 1
    path = Path(prompt.source)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data, indent = _load_json(text)
        copy = json.loads(json.dumps(next(v for v in data["versions"] if v.get("version") == number)))
        copy["version"] = latest
        copy.pop("aliases", None)  # version aliases are unique within the prompt
        data["versions"].append(copy)
        new = _dump_json(data, indent, text)
    else:
        new = _append_toml_version(text, number, latest, path)
    _check_and_write(prompt, path, new, lock)
    return f"{prompt.id}: added version {latest}, a copy of version {number} ({path})"


def _append_toml_version(text: str, number: int, latest: int, path: Path) -> str:
    lines = text.splitlines(keepends=True)
    blocks: list[tuple[int, int]] = []  # [start, end) line spans of each [[versions]] table
    start = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        is_header = stripped.startswith("[")
        if is_header and stripped.startswith("[[versions]]"):
            if start is not None:
                blocks.append((start, index))
            start = index
        elif is_header and start is not None and not stripped.startswith(("[versions.", "[[versions.")):
            blocks.append((start, index))
            start = None
    if start is not None:
        blocks.append((start, len(lines)))
    # Blank lines and comments at the end of a block introduce what follows it.
    trimmed = []
    for first, end in blocks:
        while end > first + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        trimmed.append((first, end))
    blocks = trimmed
    if not blocks:
        raise ConfigError([f"{path}: versions are not written as [[versions]] tables: add version {latest} by hand"])
    for first, end in blocks:
        block = "".join(lines[first:end])
        match = _VERSION_LINE.search(block)
        if match and int(match[2]) == number:
            break
    else:
        raise ConfigError([f"{path}: cannot find the [[versions]] table of version {number}"])
    copy = _VERSION_LINE.sub(lambda m: f"{m[1]}{latest}{m[3]}", block, count=1)
    copy = re.sub(r"(?m)^\s*aliases\s*=.*\n", "", copy)  # version aliases are unique within the prompt
    copy = copy.rstrip("\n") + "\n"
    last_end = blocks[-1][1]
    before, after = "".join(lines[:last_end]), "".join(lines[last_end:])
    if before and not before.endswith("\n"):
        before += "\n"
    return before + "\n" + copy + after


def _check_and_write(prompt: Prompt, path: Path, new: str, lock: Path) -> None:
    stem = path.stem
    result = compile_prompt_file(str(path), new.encode("utf-8"), stem)
    if result.problems or result.prompt is None:
        raise ConfigError(["the edited file would not load, nothing was written:", *result.problems])
    locked = read_lock(lock)
    if locked is not None:
        problems = violations({prompt.id: locked.get(prompt.id, {})}, {prompt.id: result.prompt}, str(lock))
        if problems:
            raise ConfigError(["refused by the lock, nothing was written:", *problems])
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _load_json(text: str) -> tuple[dict[str, Any], int | str | None]:
    data = json.loads(text)
    indent_match = re.search(r"\n([ \t]+)\S", text)
    indent: int | str | None = None
    if indent_match:
        unit = indent_match[1]
        indent = len(unit) if set(unit) == {" "} else unit
    return data, indent


def _dump_json(data: dict[str, Any], indent: int | str | None, original: str) -> str:
    out = json.dumps(data, indent=indent, ensure_ascii=False)
    return out + ("\n" if original.endswith("\n") else "")


def _listed(prompt: Prompt) -> str:
    return ", ".join(map(str, sorted(prompt.versions)))
