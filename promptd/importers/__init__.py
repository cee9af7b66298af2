"""`promptd import FORMAT SOURCE [--out DIR]` (README "Coming from LiteLLM / Helicone /
Langfuse / OpenAI"): other tools' prompts translated into promptd files.

Each format module finds its files (`discover`) and translates them
(`import_all`), reporting with file and line every construct it cannot say in
promptd's language. Here the results are written as TOML, but only after the
whole output directory, with them in it, loads as promptd would load it: a
file promptd would reject is reported and not written.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from promptd.errors import ConfigError
from promptd.importers import dotprompt, langfuse, litellm
from promptd.importers.common import Imported, Problem, Problems, to_toml
from promptd.prompts.files import PROMPT_ID
from promptd.prompts.promptset import PROMPT_SUFFIXES, PromptLoader

FORMATS = {"dotprompt": dotprompt, "litellm": litellm, "langfuse": langfuse}


@dataclass
class ImportResult:
    written: list[tuple[Path, Imported]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def run_import(fmt: str, source: Path, out: Path) -> ImportResult:
    """Translate, check, then write. Raises `ConfigError` for unusable arguments."""
    module = FORMATS[fmt]
    if not source.exists():
        raise ConfigError([f"{source}: no such file or directory"])
    files = module.discover(source)
    if not files:
        raise ConfigError([f"{source}: no *{module.SUFFIX} files to import"])
    if out.exists() and not out.is_dir():
        raise ConfigError([f"--out {out}: not a directory"])
    problems = Problems()
    imported = module.import_all(files, problems)
    for prompt in imported:
        _fix_id(prompt, problems)
    texts = {}
    for prompt in imported:
        header = f"Imported by `promptd import {fmt}` from {prompt.source}"
        text = to_toml(prompt, header)
        tomllib.loads(text)  # the writer's own check: what it wrote parses
        texts[f"{prompt.id}.toml"] = (prompt, text)
    accepted = _check(texts, out, problems)
    result = ImportResult(problems=list(problems))
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(accepted):
        prompt, text = texts[name]
        path = out / name
        temporary = path.with_name(f".{name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        result.written.append((path, prompt))
    return result


def _fix_id(prompt: Imported, problems: Problems) -> None:
    if PROMPT_ID.match(prompt.id):
        return
    fixed = re.sub(r"[^A-Za-z0-9_.-]", "_", prompt.id).lstrip("_.-")[:128] or "prompt"
    problems.add(
        Path(prompt.source.split(", ")[0]),
        prompt.line,
        f'"{prompt.id}" is not a promptd id (A-Z a-z 0-9 _ . -): written as "{fixed}"; requests must use that id',
    )
    prompt.id = fixed


def _check(texts: dict[str, tuple[Imported, str]], out: Path, problems: Problems) -> set[str]:
    """The names of the files that promptd accepts, loaded together with what
    `out` already holds; each rejection is reported and its file left out."""
    accepted = set(texts)
    with tempfile.TemporaryDirectory(prefix="promptd-import-") as scratch:
        root = Path(scratch)
        if out.is_dir():
            for path in out.rglob("*"):
                if path.is_file() and path.suffix in PROMPT_SUFFIXES and path.relative_to(out).as_posix() not in texts:
                    target = root / path.relative_to(out)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
        for name, (_, text) in texts.items():
            (root / name).write_text(text, encoding="utf-8")
        while accepted:
            try:
                PromptLoader([root]).build()
                break
            except ConfigError as exc:
                rejected = {name for name in accepted if any(f"{root / name}" in p for p in exc.problems)}
                for problem in exc.problems:
                    shown = problem.replace(f"{root}{os.sep}", f"{out}{os.sep}")
                    owner = next((name for name in rejected if f"{root / name}" in problem), None)
                    source = Path(texts[owner][0].source.split(", ")[0]) if owner else out
                    problems.add(source, None, f"promptd rejects the result, so it is not written: {shown}")
                if not rejected:
                    return set()  # the problem is in files already in `out`: write nothing
                accepted -= rejected
                for name in rejected:
                    (root / name).unlink()
    return accepted
