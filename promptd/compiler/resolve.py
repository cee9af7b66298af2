"""Resolve: a `PromptRef` -> the prompt version it means (README "Version resolution").

Explicit version; else explicit environment; else the default environment if
the prompt maps it; else the latest version. Never a silent fallback: what does
not exist is a 404 naming what does.
"""

from __future__ import annotations

from promptd.compiler.fields import PromptRef, clip
from promptd.errors import NotFound
from promptd.prompts.files import Prompt, PromptVersion
from promptd.prompts.promptset import PromptSet


class Resolved:
    __slots__ = ("prompt", "version", "environment")

    def __init__(self, prompt: Prompt, version: PromptVersion, environment: str | None) -> None:
        self.prompt = prompt
        self.version = version
        self.environment = environment


def find_prompt(prompts: PromptSet, prompt_id: str) -> Prompt:
    """The prompt with this id, or whose `aliases` hold it."""
    prompt = prompts.prompts.get(prompt_id)
    if prompt is None:
        owner = prompts.aliases.get(prompt_id)
        if owner is None:
            raise NotFound(_not_found_prompt(prompts, prompt_id), code="prompt_not_found", param="prompt_id")
        prompt = prompts.prompts[owner]
    return prompt


def resolve(prompts: PromptSet, ref: PromptRef, default_environment: str) -> Resolved:
    prompt = find_prompt(prompts, ref.id)
    if ref.version_alias is not None:
        number = prompt.version_aliases.get(ref.version_alias)
        if number is None and ref.version_alias.isascii() and ref.version_alias.isdigit():
            number = int(ref.version_alias)
        version = prompt.versions.get(number) if number is not None else None
        if version is None:
            raise NotFound(
                f'prompt "{prompt.id}" has no version alias or version "{clip(ref.version_alias)}" (versions: {", ".join(map(str, sorted(prompt.versions)))})',
                code="prompt_version_not_found",
                param="version_id",
            )
        return Resolved(prompt, version, None)
    if ref.version is not None:
        version = prompt.versions.get(ref.version)
        if version is None:
            raise NotFound(
                f'prompt "{prompt.id}" has no version {ref.version} (versions: {", ".join(map(str, sorted(prompt.versions)))})',
                code="prompt_version_not_found",
                param="prompt_version",
            )
        return Resolved(prompt, version, None)
    if ref.environment is not None:
        number = prompt.environments.get(ref.environment)
        if number is None:
            known = ", ".join(sorted(prompt.environments)) or "none"
            raise NotFound(
                f'prompt "{prompt.id}" has no environment "{clip(ref.environment)}" (environments: {known})',
                code="prompt_environment_not_found",
                param="environment",
            )
        return Resolved(prompt, prompt.versions[number], ref.environment)
    number = prompt.environments.get(default_environment)
    if number is not None:
        return Resolved(prompt, prompt.versions[number], default_environment)
    return Resolved(prompt, prompt.latest, None)


def _not_found_prompt(prompts: PromptSet, prompt_id: str) -> str:
    ids = sorted(prompts.prompts)
    shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
    return f'no prompt "{clip(prompt_id)}" (prompts: {shown or "none loaded"})'
