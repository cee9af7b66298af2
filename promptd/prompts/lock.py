"""`prompts.lock`: published versions are immutable (README "Immutable versions").

The lock file, beside `promptd.toml`, holds every prompt's version hashes. While
it exists, a set in which a locked version changed or disappeared is invalid
(a load error, and a failed reload: the last good set keeps serving). A lock
covers version contents, not environments, so promoting works under it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import orjson

from promptd.prompts.files import Prompt

LOCK_FILE_NAME = "prompts.lock"


def lock_path(config_path: Path) -> Path:
    return config_path.parent / LOCK_FILE_NAME


def version_hashes(prompts: Mapping[str, Prompt]) -> dict[str, dict[str, str]]:
    return {
        prompt_id: {
            str(number): prompts[prompt_id].versions[number].hash for number in sorted(prompts[prompt_id].versions)
        }
        for prompt_id in sorted(prompts)
    }


def read_lock(path: Path) -> dict[str, dict[str, str]] | None:
    """The locked hashes, or None when there is no lock file. A lock that cannot be
    read is an error: it must never silently stop protecting versions."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    locked = orjson.loads(data)
    if not isinstance(locked, dict) or not isinstance(locked.get("prompts"), dict):
        raise ValueError('not a promptd lock file (expected {"prompts": {...}})')
    return locked["prompts"]


def write_lock(path: Path, prompts: Mapping[str, Prompt]) -> None:
    """Write atomically (a temporary file renamed over the lock)."""
    data = orjson.dumps({"prompts": version_hashes(prompts)}, option=orjson.OPT_INDENT_2) + b"\n"
    fd, temporary = tempfile.mkstemp(prefix=".prompts.lock.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def violations(locked: Mapping[str, Mapping[str, str]], prompts: Mapping[str, Prompt], where: str) -> list[str]:
    """One line per locked version that changed or disappeared."""
    problems = []
    for prompt_id, versions in locked.items():
        prompt = prompts.get(prompt_id)
        for number, expected in versions.items():
            version = prompt.versions.get(int(number)) if prompt is not None and number.isdigit() else None
            if version is None:
                problems.append(
                    f'{where}: prompt "{prompt_id}" version {number} is locked but disappeared:'
                    " published versions are immutable (restore it, or run `promptd lock` to accept the change)"
                )
            elif version.hash != expected:
                problems.append(
                    f'{where}: prompt "{prompt_id}" version {number} changed ({expected} -> {version.hash}):'
                    f" published versions are immutable; add a new version instead ({prompt.source})"
                )
    return problems


def changed_in_place(old: Mapping[str, Prompt], new: Mapping[str, Prompt]) -> list[str]:
    """Without a lock: the versions a reload changed in place (a warning)."""
    out = []
    for prompt_id, prompt in new.items():
        before = old.get(prompt_id)
        if before is None or before is prompt:
            continue
        for number, version in prompt.versions.items():
            previous = before.versions.get(number)
            if previous is not None and previous.hash != version.hash:
                out.append(
                    f'prompt "{prompt_id}" version {number} changed in place ({prompt.source}):'
                    " published versions should be immutable; add a new version (`promptd lock` enforces it)"
                )
    return out
