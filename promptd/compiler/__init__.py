"""The compile step, in three stages: resolve (ref -> version), render (version +
variables -> messages and params) and a per-API assembly (-> the exact body sent
upstream). `compile_request` runs all three for one request."""

from __future__ import annotations

from typing import Any

from promptd.compiler import chat
from promptd.compiler.fields import PromptRef
from promptd.compiler.render import render
from promptd.compiler.resolve import resolve
from promptd.prompts.files import Prompt, PromptVersion
from promptd.prompts.promptset import PromptSet


class Compiled:
    __slots__ = ("body", "prompt", "version", "environment")

    def __init__(self, body: dict[str, Any], prompt: Prompt, version: PromptVersion, environment: str | None) -> None:
        self.body = body
        self.prompt = prompt
        self.version = version
        self.environment = environment


def compile_request(
    prompts: PromptSet, ref: PromptRef, body: dict[str, Any], default_environment: str, *, require_model: bool = True
) -> Compiled:
    """A Chat Completions body. `body` has had its prompt fields taken out by
    `take_prompt_ref`. Without `require_model`, a missing model is left out."""
    resolved = resolve(prompts, ref, default_environment)
    rendered = render(resolved, ref.variables)
    if require_model or resolved.version.model or body.get("model"):
        model: str | None = chat.pick_model(rendered, body)
    else:
        model = None
    out = chat.assemble(rendered, body, model)
    return Compiled(out, resolved.prompt, resolved.version, resolved.environment)
