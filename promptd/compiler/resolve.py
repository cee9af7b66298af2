"""Resolve: a `PromptRef` -> the prompt version it means (README "Version resolution").

Explicit version; else explicit environment; else the default environment if
the prompt maps it; else the latest version. Never a silent fallback: what does
not exist is a 404 naming what does.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Any

from promptd.compiler.fields import PromptRef, clip
from promptd.errors import NotFound
from promptd.prompts.files import Prompt, PromptVersion

if TYPE_CHECKING:
    from promptd.prompts.promptset import PromptSet


class Resolved:
    __slots__ = ("prompt", "version", "environment", "rollout")

    def __init__(
        self, prompt: Prompt, version: PromptVersion, environment: str | None, rollout: str | None = None
    ) -> None:
        self.prompt = prompt
        self.version = version
        self.environment = environment
        self.rollout = rollout  # "<environment> <version> sticky|random" when a rollout chose


def sticky_key(ref: PromptRef, body: dict[str, Any] | None) -> str | None:
    """The first of: the `x-promptd-sticky-key` header, `safety_identifier`, `user`,
    `prompt_cache_key`, `metadata.user_id`."""
    if ref.sticky_key:
        return ref.sticky_key
    if body:
        for name in ("safety_identifier", "user", "prompt_cache_key"):
            value = body.get(name)
            if value.__class__ is str and value:
                return value
        metadata = body.get("metadata")
        if metadata.__class__ is dict:
            value = metadata.get("user_id")
            if value.__class__ is str and value:
                return value
    return None


def bucket(prompt_id: str, environment: str, key: str) -> float:
    """SHA-256(prompt id NUL environment NUL key): its first 8 bytes / 2**64."""
    digest = hashlib.sha256(f"{prompt_id}\0{environment}\0{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _in_environment(prompt: Prompt, environment: str, ref: PromptRef, body: dict[str, Any] | None) -> Resolved:
    target = prompt.targets[environment]
    if target.__class__ is int:
        return Resolved(prompt, prompt.versions[target], environment)
    key = sticky_key(ref, body)
    if key is not None:
        number, how = target.sticky_pick(key), "sticky"
    else:
        number, how = target.pick(random.random()), "random"
    return Resolved(prompt, prompt.versions[number], environment, target.labels[(number, how)])


def find_prompt(prompts: PromptSet, prompt_id: str) -> Prompt:
    """The prompt with this id, or whose `aliases` hold it."""
    prompt = prompts.prompts.get(prompt_id)
    if prompt is None:
        owner = prompts.aliases.get(prompt_id)
        if owner is None:
            raise NotFound(_not_found_prompt(prompts, prompt_id), code="prompt_not_found", param="prompt_id")
        prompt = prompts.prompts[owner]
    return prompt


def resolve(
    prompts: PromptSet, ref: PromptRef, default_environment: str, body: dict[str, Any] | None = None
) -> Resolved:
    """`body` (the request's other fields) may hold the rollout's sticky key."""
    prompt = find_prompt(prompts, ref.id)
    if ref.version_alias is not None or ref.version is not None:
        if ref.version_alias is not None:
            number = prompt.version_aliases.get(ref.version_alias)
            if number is None and ref.version_alias.isascii() and ref.version_alias.isdigit():
                number = int(ref.version_alias)
            what, param = f'version alias or version "{clip(ref.version_alias)}"', "version_id"
        else:
            number, what, param = ref.version, f"version {ref.version}", "prompt_version"
        version = prompt.versions.get(number) if number is not None else None
        if version is None:
            raise NotFound(
                f'prompt "{prompt.id}" has no {what} (versions: {", ".join(map(str, sorted(prompt.versions)))})',
                code="prompt_version_not_found",
                param=param,
            )
        return Resolved(prompt, version, None)
    if ref.environment is not None:
        if ref.environment not in prompt.targets:
            known = ", ".join(sorted(prompt.environments)) or "none"
            raise NotFound(
                f'prompt "{prompt.id}" has no environment "{clip(ref.environment)}" (environments: {known})',
                code="prompt_environment_not_found",
                param="environment",
            )
        return _in_environment(prompt, ref.environment, ref, body)
    if default_environment in prompt.targets:
        return _in_environment(prompt, default_environment, ref, body)
    return Resolved(prompt, prompt.latest, None)


def _not_found_prompt(prompts: PromptSet, prompt_id: str) -> str:
    ids = sorted(prompts.prompts)
    shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
    return f'no prompt "{clip(prompt_id)}" (prompts: {shown or "none loaded"})'
