"""The served prompt set: one immutable snapshot, and the loader that builds it.

A `PromptSet` is built whole and validated aside, then swapped in by `ServedPrompts`
with one assignment (see `served.py`); a handler reads `served.current` once
and uses that snapshot for the whole request.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import re
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import orjson

from promptd.compiler.fields import parse_selector
from promptd.errors import ConfigError
from promptd.prompts.files import (
    FileResult,
    PartialError,
    Prompt,
    VersionDecl,
    compile_prompt_file,
    content_hash,
    decode_prompt_file,
)
from promptd.prompts.lock import read_lock, violations

PROMPT_SUFFIXES = (".toml", ".json")


@dataclass(frozen=True, slots=True)
class PromptSet:
    prompts: Mapping[str, Prompt]
    hash: str
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # alias -> prompt id
    updated_at: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))  # id -> file mtime
    generation: int = 0
    loaded_at: float = 0.0
    warnings: tuple[str, ...] = ()

    def with_generation(self, generation: int) -> PromptSet:
        return replace(self, generation=generation, loaded_at=time.time())

    @property
    def version_count(self) -> int:
        return sum(len(p.versions) for p in self.prompts.values())


def prompt_files(directories: Iterable[Path]) -> list[str]:
    """Every *.toml / *.json below the directories, recursively, skipping names
    that start with "." (editor temporaries, a ConfigMap's `..data` machinery)."""
    found: list[str] = []
    for directory in directories:
        for root, dirs, files in os.walk(str(directory), followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and name.endswith(PROMPT_SUFFIXES):
                    found.append(os.path.join(root, name))
    return found


# A file modified less than this long before a build is always read again: file
# timestamps are coarse (a few ms, seconds on some filesystems), so two writes of
# the same size in one tick would otherwise look unchanged ("racy git").
_RACY_NS = 2_000_000_000


FileKey = tuple[int, int, int, int]  # inode, size, mtime, ctime


@contextmanager
def collector_paused() -> Iterator[None]:
    """Loading allocates hundreds of thousands of objects, none of them cyclic
    garbage: the cycle collector would only rescan them (it tripled the load time
    of 10,000 files), and one full collection holds the GIL for its whole run,
    which stalls the event loop while a thread builds."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Re-enabled as it is, the collector would at once scan every object made
        # meanwhile (a quarter second for 10,000 prompts): they are long-lived, so
        # they move out of its reach first.
        gc.freeze()
        if collecting:
            gc.enable()


def scan(
    directories: tuple[Path, ...], known: Mapping[str, FileKey]
) -> tuple[list[tuple[str, FileKey | str | None]], dict[str, FileResult]]:
    """Stat every prompt file; read and compile the ones whose key is not in
    `known` (or that changed very recently). Returns every path in load order
    with its key, or why it cannot be read (a string), or None for an entry
    that is not a regular file (skipped: a FIFO must never block a reload);
    and the results compiled now. A prompt directory that is gone or is not a
    directory is an entry with its problem.

    Pure and picklable both ways: large sets run it in a builder process."""
    with collector_paused():
        entries: list[tuple[str, FileKey | str | None]] = []
        compiled: dict[str, FileResult] = {}
        for directory in directories:
            if not os.path.isdir(directory):
                entries.append((str(directory), "prompt directory is gone or is not a directory"))
        racy_before = time.time_ns() - _RACY_NS
        for path in prompt_files(directories):
            try:
                st = os.stat(path)
                if not stat.S_ISREG(st.st_mode):
                    entries.append((path, None))
                    continue
                key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if known.get(path) != key or st.st_mtime_ns >= racy_before:
                    data = _read_regular(path)
                    if data is None:
                        entries.append((path, None))
                        continue
                    stem = os.path.splitext(os.path.basename(path))[0]
                    compiled[path] = compile_prompt_file(path, data, stem)
            except OSError as exc:
                entries.append((path, f"cannot read: {exc.strerror}"))
                continue
            entries.append((path, key))
        return entries, compiled


def _read_regular(path: str) -> bytes | None:
    """The file's bytes; None if it turned out not to be a regular file (opened
    without blocking, so a FIFO swapped in after the stat cannot hang the build)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


_PACK_ENTRIES = 500


def scan_packed(directories: tuple[Path, ...], known: Mapping[str, FileKey]) -> tuple[list[bytes], dict[str, bytes]]:
    """`scan` for a builder process, its result pickled in small pieces: one
    `pickle.loads` holds the GIL for its whole run, so the serving process
    unpickles piece by piece (`unpack`) instead of 15 MB at once."""
    entries, compiled = scan(directories, known)
    return (
        [pickle.dumps(entries[i : i + _PACK_ENTRIES]) for i in range(0, len(entries), _PACK_ENTRIES)],
        {path: pickle.dumps(result) for path, result in compiled.items()},
    )


def unpack(
    entry_chunks: list[bytes], compiled: dict[str, bytes]
) -> tuple[list[tuple[str, FileKey | str | None]], dict[str, FileResult]]:
    entries: list[tuple[str, FileKey | str | None]] = []
    for chunk in entry_chunks:
        entries += pickle.loads(chunk)
    return entries, {path: pickle.loads(data) for path, data in compiled.items()}


class PromptLoader:
    """Builds prompt sets from directories. A file whose inode, size and times
    did not change since the last build is not read or parsed again, so a build
    after a one-file edit costs a stat per file."""

    def __init__(
        self, directories: Iterable[Path], lock: Path | None = None, default_environment: str = "production"
    ) -> None:
        self.directories = tuple(directories)
        self.default_environment = default_environment  # partials without a selector resolve like requests
        self.lock = lock  # prompts.lock: checked on every build while it exists
        self._cache: dict[str, tuple[FileKey, FileResult]] = {}
        self._built = False  # once a set was built, an empty one is a failed reload

    @property
    def file_count(self) -> int:
        return len(self._cache)

    def known(self) -> dict[str, FileKey]:
        return {path: key for path, (key, _) in self._cache.items()}

    def build(self) -> PromptSet:
        """Load every file; raise `ConfigError` with every problem, or return a set."""
        return self.assemble(*scan(self.directories, self.known()))

    def assemble_packed(self, entry_chunks: list[bytes], compiled: dict[str, bytes]) -> PromptSet:
        """`assemble` the result of `scan_packed`."""
        with collector_paused():
            return self.assemble(*unpack(entry_chunks, compiled))

    def assemble(self, entries: list[tuple[str, FileKey | str | None]], compiled: dict[str, FileResult]) -> PromptSet:
        """Cross-check the files of a scan and build the set (or raise `ConfigError`)."""
        cache: dict[str, tuple[FileKey, FileResult]] = {}
        problems: list[str] = []
        warnings: list[str] = []
        by_id: dict[str, Prompt] = {}
        aliases: dict[str, str] = {}
        updated: dict[str, float] = {}
        results: list[tuple[str, FileKey, FileResult]] = []
        deferred: list[tuple[str, FileKey, FileResult]] = []
        for path, key in entries:
            if key is None:
                warnings.append(f"{path}: not a regular file (a FIFO, socket or device); skipped")
                continue
            if isinstance(key, str):
                problems.append(f"{path}: {key}")
                continue
            result = compiled.get(path) or self._cache[path][1]
            cache[path] = (key, result)
            (deferred if result.deferred is not None else results).append((path, key, result))
        if deferred:  # files whose templates use partials: compiled with every other file at hand
            partials = Partials(
                [r.prompt for _, _, r in results if r.prompt is not None], deferred, self.default_environment
            )
            for path, key, result in deferred:
                assert result.deferred is not None
                stem = os.path.splitext(os.path.basename(path))[0]
                results.append((path, key, compile_prompt_file(path, result.deferred, stem, partials)))
        for path, key, result in results:
            problems.extend(result.problems)
            warnings.extend(result.warnings)
            prompt = result.prompt
            if prompt is None:
                continue
            if prompt.id in by_id:
                problems.append(
                    f'{path}: id: duplicate prompt id "{prompt.id}" (also defined in {by_id[prompt.id].source})'
                )
                continue
            by_id[prompt.id] = prompt
            updated[prompt.id] = key[2] / 1e9
            for alias in prompt.aliases:
                if alias in aliases:
                    problems.append(f'{path}: aliases: "{alias}" is also an alias of "{aliases[alias]}"')
                aliases[alias] = prompt.id
        for alias, owner in aliases.items():
            if alias in by_id:
                problems.append(
                    f'{by_id[owner].source}: aliases: "{alias}" is also the id of a prompt ({by_id[alias].source})'
                )
        self._cache = cache
        if not by_id and not problems:
            where = ", ".join(map(str, self.directories))
            if self._built:
                problems.append(f"{where}: no prompt files left: a reload that would serve no prompt is refused")
            else:
                warnings.append(f"{where}: no prompt files found; serving an empty set")
        if self.lock is not None and not problems:
            try:
                locked = read_lock(self.lock)
            except (OSError, ValueError) as exc:
                problems.append(f"{self.lock}: cannot read the lock: {exc}")
            else:
                if locked is not None:
                    problems += violations(locked, by_id, str(self.lock))
        if problems:
            raise ConfigError(problems, warnings)
        self._built = True
        digest = hashlib.sha256()
        for prompt_id in sorted(by_id):
            prompt = by_id[prompt_id]
            digest.update(f"{prompt_id}\0{prompt.hash}\0{prompt.source}\n".encode())
        return PromptSet(
            prompts=MappingProxyType(by_id),
            hash=digest.hexdigest()[:16],
            aliases=MappingProxyType(aliases),
            updated_at=MappingProxyType(updated),
            warnings=tuple(warnings),
        )


_PARTIAL_TAG = re.compile(r"\{\{>\s*([^}\s]+)\s*\}\}")
MAX_PARTIAL_DEPTH = 8


class Partials:
    """Resolves `{{> id}}`, `{{> id@3}}`, `{{> id@env}}` while a set is assembled:
    the tag becomes the template text of the other prompt's version (which must
    have exactly one message), recursively, so rendering never looks anything up."""

    def __init__(
        self, prompts: list[Prompt], deferred: list[tuple[str, FileKey, FileResult]], default_environment: str
    ) -> None:
        self.default_environment = default_environment
        # id -> (environments, {version: VersionDecl})
        self.known: dict[str, tuple[Mapping[str, Any], dict[int, VersionDecl]]] = {
            p.id: (p.environments, {n: v.decl for n, v in p.versions.items()}) for p in prompts
        }
        for path, _, result in deferred:
            try:
                decl = decode_prompt_file(path, result.deferred or b"")
            except Exception:  # reported when the file itself is compiled
                continue
            prompt_id = decl.id if decl.id is not None else os.path.splitext(os.path.basename(path))[0]
            self.known.setdefault(prompt_id, (decl.environments, {v.version: v for v in decl.versions}))

    def expand(self, text: str, used: dict[str, Any], chain: list[str]) -> str:
        def replace(match: re.Match[str]) -> str:
            ref = match[1]
            target_id, target_text, digest, declarations = self._target(ref, chain)
            used[ref] = (digest, declarations)
            if "{{>" in target_text:
                if len(chain) >= MAX_PARTIAL_DEPTH:
                    raise PartialError(
                        f"more than {MAX_PARTIAL_DEPTH} nested partials: {' -> '.join([*chain, target_id])}"
                    )
                target_text = self.expand(target_text, used, [*chain, target_id])
            return target_text

        return _PARTIAL_TAG.sub(replace, text)

    def _target(self, ref: str, chain: list[str]) -> tuple[str, str, str, dict[str, Any]]:
        try:
            prompt_id, number, environment = parse_selector(ref)
        except ValueError as exc:
            raise PartialError(f'partial "{ref}" {exc}') from None
        if prompt_id in chain:
            raise PartialError(f"partials form a cycle: {' -> '.join([*chain, prompt_id])}")
        found = self.known.get(prompt_id)
        if found is None:
            raise PartialError(f'partial "{ref}": no prompt "{prompt_id}"')
        environments, versions = found
        if number is None:
            name = environment if environment is not None else self.default_environment
            target = environments.get(name)
            if isinstance(target, dict):
                raise PartialError(f'partial "{ref}": environment "{name}" is a rollout, not one version')
            if target is None and environment is not None:
                raise PartialError(f'partial "{ref}": prompt "{prompt_id}" has no environment "{environment}"')
            number = target if target is not None else max(versions)
        version = versions.get(number)
        if version is None:
            raise PartialError(f'partial "{ref}": prompt "{prompt_id}" has no version {number}')
        if len(version.messages) != 1 or not isinstance(version.messages[0].content, str):
            raise PartialError(f'partial "{ref}": version {number} of "{prompt_id}" must have exactly one text message')
        digest = content_hash(orjson.dumps([prompt_id, msgspec.to_builtins(version)], option=orjson.OPT_SORT_KEYS))
        return prompt_id, version.messages[0].content, digest, dict(version.variables)
