"""One prompt as the catalog describes it: `GET /v1/prompts` and `promptd list` both use it."""

from __future__ import annotations

import datetime
from typing import Any

from promptd.prompts.files import Prompt, default_version
from promptd.prompts.promptset import PromptSet


def summarize(prompts: PromptSet, prompt: Prompt, default_environment: str) -> dict[str, Any]:
    default = default_version(prompt, default_environment)
    updated = prompts.updated_at.get(prompt.id)
    return {
        "id": prompt.id,
        "description": prompt.description,
        "model": default.model,
        "versions": sorted(prompt.versions),
        "latest": prompt.latest.number,
        "environments": prompt.environments,
        "aliases": list(prompt.aliases),
        "default_version": default.number,
        "variables": default.rules.describe(),
        "source": prompt.source,
        "updated_at": iso_time(updated) if updated is not None else None,
        "hash": prompt.hash,
    }


def iso_time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
