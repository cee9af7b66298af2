"""The compile step: (snapshot, request body) -> the exact body sent upstream.

DESIGN.md 3.1: read the prompt fields in every accepted spelling, resolve the
version (explicit version, explicit environment, default environment, latest),
validate variables, render the prompt's messages, put the caller's messages
after them, pick the model, merge params, drop the prompt fields, keep the rest.
"""

from __future__ import annotations

from typing import Any

from promptd.errors import BadRequest, NotFound
from promptd.prompts.files import Prompt, PromptVersion
from promptd.prompts.promptset import PromptSet

PROMPT_FIELDS = frozenset(
    {
        "prompt_id",
        "prompt_variables",
        "inputs",
        "prompt_version",
        "environment",
        "prompt_environment",
        "prompt_label",
        "prompt",
    }
)
_PROMPT_OBJECT_KEYS = ("id", "version", "variables")


class PromptRef:
    """What the request asked for, with every spelling folded into one."""

    __slots__ = ("id", "version", "environment", "variables")

    def __init__(
        self,
        id: str,
        version: int | None = None,
        environment: str | None = None,
        variables: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.version = version
        self.environment = environment
        self.variables = variables


class Compiled:
    __slots__ = ("body", "prompt", "version", "environment")

    def __init__(self, body: dict[str, Any], prompt: Prompt, version: PromptVersion, environment: str | None) -> None:
        self.body = body
        self.prompt = prompt
        self.version = version
        self.environment = environment


def _fail(message: str, param: str) -> BadRequest:
    return BadRequest(message, code="invalid_prompt_fields", param=param)


def _one(found: list[tuple[str, Any]], what: str) -> tuple[str, Any] | None:
    if len(found) > 1:
        names = " and ".join(f"`{name}`" for name, _ in found)
        raise _fail(f"{what} given twice, as {names}: send only one", found[1][0])
    return found[0] if found else None


def _version_number(name: str, value: Any) -> int:
    if value.__class__ is int and value >= 1:
        return value
    if value.__class__ is str and value.isascii() and value.isdigit() and int(value) >= 1:
        return int(value)
    raise _fail(f"`{name}` must be a positive integer or a string of digits", name)


def take_prompt_ref(body: dict[str, Any]) -> PromptRef | None:
    """Remove the prompt fields from `body` and return what they ask for;
    None when the request has no prompt field at all."""
    if PROMPT_FIELDS.isdisjoint(body):
        return None
    ids: list[tuple[str, Any]] = []
    variables: list[tuple[str, Any]] = []
    versions: list[tuple[str, Any]] = []
    environments: list[tuple[str, Any]] = []

    if "prompt" in body:
        prompt = body.pop("prompt")
        if prompt.__class__ is not dict:
            raise _fail("`prompt` must be an object {id, version?, variables?}", "prompt")
        unknown = [k for k in prompt if k not in _PROMPT_OBJECT_KEYS]
        if unknown:
            raise _fail(f"`prompt` has unknown key `{unknown[0]}` (allowed: id, version, variables)", f"prompt.{unknown[0]}")
        if "id" in prompt:
            ids.append(("prompt.id", prompt["id"]))
        if "version" in prompt:
            versions.append(("prompt.version", prompt["version"]))
        if "variables" in prompt:
            variables.append(("prompt.variables", prompt["variables"]))
    if "prompt_id" in body:
        ids.append(("prompt_id", body.pop("prompt_id")))
    for name in ("prompt_variables", "inputs"):
        if name in body:
            variables.append((name, body.pop(name)))
    if "prompt_version" in body:
        versions.append(("prompt_version", body.pop("prompt_version")))
    for name in ("environment", "prompt_environment", "prompt_label"):
        if name in body:
            environments.append((name, body.pop(name)))

    id_field = _one(ids, "the prompt id")
    if id_field is None:
        given = [name for name, _ in variables + versions + environments]
        raise _fail(f"`{given[0]}` was given without `prompt_id`", "prompt_id")
    id_name, prompt_id = id_field
    if prompt_id.__class__ is not str or not prompt_id:
        raise _fail(f"`{id_name}` must be a non-empty string", id_name)
    if "@" in prompt_id:
        prompt_id, _, selector = prompt_id.partition("@")
        if not selector or not prompt_id:
            raise _fail(f"`{id_name}` must look like `id`, `id@3` or `id@staging`", id_name)
        if selector.isascii() and selector.isdigit():
            versions.append((f"{id_name} (@{selector})", selector))
        else:
            environments.append((f"{id_name} (@{selector})", selector))

    ref = PromptRef(prompt_id)
    version_field = _one(versions, "the prompt version")
    environment_field = _one(environments, "the prompt environment")
    if version_field and environment_field:
        raise _fail(
            f"give a version (`{version_field[0]}`) or an environment (`{environment_field[0]}`), not both",
            environment_field[0],
        )
    if version_field:
        ref.version = _version_number(*version_field)
    if environment_field:
        name, environment = environment_field
        if environment.__class__ is not str or not environment:
            raise _fail(f"`{name}` must be a non-empty string", name)
        ref.environment = environment
    variables_field = _one(variables, "the prompt variables")
    if variables_field:
        name, values = variables_field
        if values.__class__ is not dict:
            raise _fail(f"`{name}` must be an object of variable values", name)
        ref.variables = values
    return ref


def resolve(prompts: PromptSet, ref: PromptRef, default_environment: str) -> tuple[Prompt, PromptVersion, str | None]:
    """Explicit version; else explicit environment; else the default environment
    if the prompt maps it; else the latest version. Never a silent fallback."""
    prompt = prompts.prompts.get(ref.id)
    if prompt is None:
        raise NotFound(_not_found_prompt(prompts, ref.id), code="prompt_not_found", param="prompt_id")
    if ref.version is not None:
        version = prompt.versions.get(ref.version)
        if version is None:
            raise NotFound(
                f'prompt "{ref.id}" has no version {ref.version} (versions: {", ".join(map(str, sorted(prompt.versions)))})',
                code="prompt_version_not_found",
                param="prompt_version",
            )
        return prompt, version, None
    if ref.environment is not None:
        number = prompt.environments.get(ref.environment)
        if number is None:
            known = ", ".join(sorted(prompt.environments)) or "none"
            raise NotFound(
                f'prompt "{ref.id}" has no environment "{ref.environment}" (environments: {known})',
                code="prompt_environment_not_found",
                param="environment",
            )
        return prompt, prompt.versions[number], ref.environment
    number = prompt.environments.get(default_environment)
    if number is not None:
        return prompt, prompt.versions[number], default_environment
    return prompt, prompt.latest, None


def _not_found_prompt(prompts: PromptSet, prompt_id: str) -> str:
    ids = sorted(prompts.prompts)
    shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
    return f'no prompt "{prompt_id}" (prompts: {shown or "none loaded"})'


def compile_request(
    prompts: PromptSet, ref: PromptRef, body: dict[str, Any], default_environment: str
) -> Compiled:
    """`body` has had its prompt fields taken out by `take_prompt_ref`."""
    prompt, version, environment = resolve(prompts, ref, default_environment)
    context = version.rules.apply(ref.variables or {})
    messages = version.render_messages(context)
    extra = body.get("messages")
    if extra is not None:
        if extra.__class__ is not list:
            raise BadRequest("`messages` must be an array of messages", code="invalid_messages", param="messages")
        messages += extra
    model = version.model or body.get("model")
    if not model:
        raise BadRequest(
            f'prompt "{prompt.id}" version {version.number} sets no model and the request has none: send `model`',
            code="model_required",
            param="model",
        )
    if model.__class__ is not str:
        raise BadRequest("`model` must be a string", code="invalid_model", param="model")
    out: dict[str, Any] = {"model": model, "messages": messages}
    for key, value in version.params.items():
        if key not in body:
            out[key] = value
    for key, value in body.items():
        if key != "model" and key != "messages":
            out[key] = value
    return Compiled(out, prompt, version, environment)
