"""The prompt fields of a request (README "Prompt fields"), in every accepted
spelling, folded into one `PromptRef`; and the one `id@selector` parser."""

from __future__ import annotations

from typing import Any

from promptd.errors import BadRequest

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
            raise _fail(
                f"`prompt` has unknown key `{unknown[0]}` (allowed: id, version, variables)", f"prompt.{unknown[0]}"
            )
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
        try:
            prompt_id, version, environment = parse_selector(prompt_id)
        except ValueError as exc:
            raise _fail(f"`{id_name}` {exc}", id_name) from None
        if version is not None:
            versions.append((f"{id_name} (@{version})", version))
        else:
            environments.append((f"{id_name} (@{environment})", environment))

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


def parse_selector(text: str) -> tuple[str, int | None, str | None]:
    """`id`, `id@3` or `id@staging` -> (id, version, environment); ValueError if malformed."""
    prompt_id, at, selector = text.partition("@")
    if not prompt_id or (at and (not selector or "@" in selector)):
        raise ValueError("must look like `id`, `id@3` or `id@staging`")
    if not at:
        return prompt_id, None, None
    if selector.isascii() and selector.isdigit():
        if int(selector) < 1:
            raise ValueError("must name a version of 1 or more")
        return prompt_id, int(selector), None
    return prompt_id, None, selector
