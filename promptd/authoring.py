"""`promptd list | show | diff | test`: the prompt set as a prompt author reads it, with
no server running (README "Authoring commands")."""

from __future__ import annotations

import difflib
from typing import Any

import msgspec
import orjson

from promptd.compiler.fields import PromptRef, parse_selector
from promptd.compiler.preview import preview
from promptd.compiler.resolve import find_prompt, resolve
from promptd.errors import PromptdError
from promptd.prompts.catalog import summarize
from promptd.prompts.files import Prompt, PromptVersion, Rollout, default_version
from promptd.prompts.promptset import PromptSet
from promptd.upstreams.routing import Router


def catalog(prompts: PromptSet, default_environment: str) -> list[dict[str, Any]]:
    """One entry per prompt, sorted by id: the catalog's fields a prompt author reads."""
    out = []
    for prompt_id in sorted(prompts.prompts):
        summary = summarize(prompts, prompts.prompts[prompt_id], default_environment)
        entry = {key: summary[key] for key in ("id", "description", "model", "versions", "latest", "environments")}
        out.append({**entry, "variables": sorted(summary["variables"]), "file": summary["source"]})
    return out


def list_text(entries: list[dict[str, Any]]) -> str:
    lines = []
    for entry in entries:
        environments = ", ".join(
            f"{name}={orjson.dumps(target).decode() if isinstance(target, dict) else target}"
            for name, target in sorted(entry["environments"].items())
        )
        lines.append(
            f"{entry['id']}  v{entry['latest']} ({len(entry['versions'])} versions)  model={entry['model'] or '-'}"
            f"  [{environments or 'no environments'}]  vars: {', '.join(entry['variables']) or '-'}  {entry['file']}"
        )
        if entry["description"]:
            lines.append(f"    {entry['description']}")
    return "\n".join(lines) + ("\n" if lines else "")


def pick(prompts: PromptSet, default_environment: str, selector: str) -> tuple[Prompt, PromptVersion, str]:
    """`id`, `id@N` or `id@ENV` -> the version, and how it was chosen. Without a
    selector: what a request without one gets (a rollout: its heaviest version)."""
    prompt_id, number, environment = parse_selector(selector)
    prompt = find_prompt(prompts, prompt_id)
    if number is None and environment is None:
        version = default_version(prompt, default_environment)
        how = "latest" if default_environment not in prompt.targets else f"environment {default_environment}"
        return prompt, version, how
    resolved = resolve(prompts, PromptRef(prompt.id, number, environment), default_environment)
    target = prompt.targets.get(environment or "")
    if isinstance(target, Rollout):
        version = default_version(prompt, environment or "")
        return prompt, version, f"environment {environment} (a rollout; its heaviest version)"
    return prompt, resolved.version, f"environment {environment}" if environment else f"version {number}"


def as_written(version: PromptVersion) -> dict[str, Any]:
    """A version as its file says it: templates unrendered."""
    decl = msgspec.to_builtins(version.decl)
    return {
        "version": version.number,
        "model": version.model,
        "messages": decl["messages"],
        "params": decl.get("params", {}),
        "variables": decl.get("variables", {}),
        "aliases": decl.get("aliases", []),
        "partials": sorted(version.partials),
        "hash": version.hash,
    }


def show_text(prompt: Prompt, written: dict[str, Any], how: str) -> str:
    lines = [f"{prompt.id} version {written['version']} ({how}), hash {written['hash']}", f"file: {prompt.source}"]
    lines.append(f"model: {written['model'] or '- (the request chooses)'}")
    if written["partials"]:
        lines.append(f"partials: {', '.join(written['partials'])}")
    lines.append("messages:")
    for message in written["messages"]:
        if "placeholder" in message:
            lines.append(f"  [{message['placeholder']} placeholder: the request's messages go here]")
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else orjson.dumps(content).decode()
        lines.append(f"  [{message['role']}]")
        lines += [f"    {line}" for line in text.splitlines() or [""]]
    if written["params"]:
        lines.append("params: " + orjson.dumps(written["params"], option=orjson.OPT_SORT_KEYS).decode())
    for name, declaration in written["variables"].items():
        lines.append(f"variable {name}: " + orjson.dumps(declaration, option=orjson.OPT_SORT_KEYS).decode())
    return "\n".join(lines) + "\n"


def canonical(written: dict[str, Any]) -> list[str]:
    """A stable, readable form of a version for diffs (no hash, sorted keys)."""
    shown = {key: written[key] for key in ("model", "messages", "params", "variables")}
    return orjson.dumps(shown, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode().splitlines(keepends=True)


def diff_text(prompts: PromptSet, default_environment: str, prompt_id: str, a: str, b: str) -> str:
    sides = []
    for side in (a, b):
        _, version, _ = pick(prompts, default_environment, f"{prompt_id}@{side}")
        sides.append((f"{prompt_id}@{side} (version {version.number})", canonical(as_written(version))))
    (name_a, lines_a), (name_b, lines_b) = sides
    return "".join(difflib.unified_diff(lines_a, lines_b, fromfile=name_a, tofile=name_b))


def run_tests(
    prompts: PromptSet, router: Router, default_environment: str, only: list[str]
) -> tuple[list[str], int, int]:
    """Run the `[[tests]]` of every prompt (or of the ids in `only`): one line per
    test, and the counts passed and failed. Nothing is sent anywhere."""
    lines: list[str] = []
    passed = failed = 0
    missing = [prompt_id for prompt_id in only if prompt_id not in prompts.prompts]
    for prompt_id in missing:
        lines.append(f"FAIL {prompt_id}: no such prompt")
        failed += 1
    for prompt_id in sorted(prompts.prompts):
        if only and prompt_id not in only:
            continue
        prompt = prompts.prompts[prompt_id]
        for test in prompt.tests:
            problem = _run_one(prompts, router, default_environment, prompt, test)
            if problem is None:
                passed += 1
                lines.append(f"PASS {prompt_id}: {test.name}")
            else:
                failed += 1
                lines.append(f"FAIL {prompt_id}: {test.name}: {problem}")
    return lines, passed, failed


def _run_one(prompts: PromptSet, router: Router, default_environment: str, prompt: Prompt, test: Any) -> str | None:
    body: dict[str, Any] = {"variables": dict(test.variables)}
    if test.version is not None:
        body["version"] = test.version
    if test.environment is not None:
        body["environment"] = test.environment
    if test.sticky_key is not None:
        body["sticky_key"] = test.sticky_key
    if test.messages is not None:
        body["messages"] = list(test.messages)
    try:
        answer = preview(prompts, router, default_environment, prompt.id, body, require_model=False)
    except PromptdError as exc:
        if test.expect_error == exc.code:
            return None
        return f"expected {_expectation(test)}, got error {exc.code}: {exc.message}"
    if test.expect_error is not None:
        return f"expected error {test.expect_error}, got a body (version {answer['version']})"
    messages = answer["body"]["messages"]
    if test.expect_messages is not None and messages != test.expect_messages:
        return f"expected messages {_json(test.expect_messages)}, rendered {_json(messages)}"
    text = "\n".join(_texts(messages))
    absent = [needle for needle in test.expect_contains or () if needle not in text]
    if absent:
        return f"expected the rendered messages to contain {_json(absent)}, rendered {_json(messages)}"
    return None


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return out


def _expectation(test: Any) -> str:
    if test.expect_error is not None:
        return f"error {test.expect_error}"
    return "a body"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
