"""A render preview: the exact body a request would send upstream, and where,
without sending anything. `POST /v1/prompts/{id}/render` and `promptd render`
both answer with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptd.compiler import compile_request
from promptd.compiler.fields import PROMPT_FIELDS, take_prompt_ref
from promptd.errors import BadRequest
from promptd.upstreams.routing import Router

if TYPE_CHECKING:
    from promptd.prompts.promptset import PromptSet

# A preview's own spelling of the prompt fields -> the request field it stands for.
APIS = ("chat", "responses")
PREVIEW_FIELDS = {"version": "prompt_version", "environment": "environment", "variables": "prompt_variables"}


def preview(
    prompts: PromptSet,
    router: Router,
    default_environment: str,
    prompt_id: str,
    body: dict[str, Any],
    *,
    require_model: bool = True,
) -> dict[str, Any]:
    """`body`: `{version?, environment?, variables?, api?, sticky_key?}` plus any request field
    (`messages`, `model`, ...; `input` for `api: "responses"`). Raises the errors
    a request would get."""
    api = body.pop("api", "chat")
    if api not in APIS:
        raise BadRequest('`api` must be "chat" or "responses"', code="invalid_prompt_fields", param="api")
    fields: dict[str, Any] = {"prompt_id": prompt_id}
    for name, field in PREVIEW_FIELDS.items():
        if name in body:
            fields[field] = body.pop(name)
    misplaced = sorted(PROMPT_FIELDS.intersection(body))
    if misplaced:
        raise BadRequest(
            f"`{misplaced[0]}` does not belong in a render body: use version, environment and variables",
            code="invalid_prompt_fields",
            param=misplaced[0],
        )
    sticky = body.pop("sticky_key", None)
    if sticky is not None and (sticky.__class__ is not str or not sticky):
        raise BadRequest("`sticky_key` must be a non-empty string", code="invalid_prompt_fields", param="sticky_key")
    ref = take_prompt_ref(fields)
    assert ref is not None
    ref.sticky_key = sticky
    compiled = compile_request(prompts, ref, body, default_environment, require_model=require_model, api=api)
    model = compiled.body.get("model")
    upstream = router.for_model(model) if model is not None else None
    return {
        "prompt_id": compiled.prompt.id,
        "version": compiled.version.number,
        "environment": compiled.environment,
        "rollout": compiled.rollout,
        "hash": compiled.version.hash,
        "upstream": upstream.name if upstream is not None else None,
        "api": api,
        "body": compiled.body,
        "unused_variables": compiled.unused,
        "dropped_params": compiled.dropped or [],
    }
