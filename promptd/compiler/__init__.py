"""The compile step, in three stages: resolve (ref -> version), render (version +
variables -> messages and params) and a per-API assembly (-> the exact body sent
upstream). `compile_request` runs all three for one request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptd.compiler import chat, responses
from promptd.compiler.fields import PromptRef
from promptd.compiler.render import render
from promptd.compiler.resolve import resolve
from promptd.prompts.files import Prompt, PromptVersion

if TYPE_CHECKING:
    from promptd.prompts.promptset import PromptSet


class Compiled:
    __slots__ = ("body", "prompt", "version", "environment", "unused", "dropped", "rollout")

    def __init__(
        self,
        body: dict[str, Any],
        prompt: Prompt,
        version: PromptVersion,
        environment: str | None,
        unused: list[str],
        dropped: list[str] | None = None,
    ) -> None:
        self.body = body
        self.prompt = prompt
        self.version = version
        self.environment = environment
        self.unused = unused
        self.dropped = dropped  # Responses: the prompt's params with no equivalent, not sent
        self.rollout: str | None = None  # "<environment> <version> sticky|random"

    def headers(self) -> list[tuple[str, str]]:
        """The `x-promptd-*` response headers of this compilation."""
        headers = list(self.version.headers)
        if self.unused:
            headers.append(("x-promptd-unused-variables", header_list(self.unused)))
        if self.dropped:
            headers.append(("x-promptd-dropped-params", ",".join(self.dropped)))
        if self.rollout is not None:
            headers.append(("x-promptd-rollout", self.rollout))
        return headers


_HEADER_NAMES = 20


def header_list(names: list[str]) -> str:
    """Client-supplied names as one header value: printable ASCII, each clipped,
    at most 20 of them."""
    shown = [name[:64].encode("ascii", "backslashreplace").decode() for name in names[:_HEADER_NAMES]]
    shown = ["".join(c if " " < c < "\x7f" and c != "," else "?" for c in name) for name in shown]
    if len(names) > _HEADER_NAMES:
        shown.append(f"(+{len(names) - _HEADER_NAMES} more)")
    return ",".join(shown)


def compile_request(
    prompts: PromptSet,
    ref: PromptRef,
    body: dict[str, Any],
    default_environment: str,
    *,
    require_model: bool = True,
    api: str = "chat",
) -> Compiled:
    """The body for `api` ("chat": Chat Completions, "responses": the Responses API).
    `body` has had its prompt fields taken out by `take_prompt_ref`. Without
    `require_model`, a missing model is left out (a preview)."""
    resolved = resolve(prompts, ref, default_environment, body)
    rendered = render(resolved, ref.variables)
    if require_model or resolved.version.model or body.get("model"):
        model: str | None = chat.pick_model(rendered, body)
    else:
        model = None
    if api == "responses":
        assembled = responses.assemble(rendered, body, model)
        compiled = Compiled(
            assembled.body, resolved.prompt, resolved.version, resolved.environment, rendered.unused, assembled.dropped
        )
    else:
        out = chat.assemble(rendered, body, model)
        compiled = Compiled(out, resolved.prompt, resolved.version, resolved.environment, rendered.unused)
    compiled.rollout = resolved.rollout
    return compiled
