"""The prompt fields of a request (README "Prompt fields"), in every accepted
spelling, folded into one `PromptRef`; and the one `id@selector` parser."""

from __future__ import annotations

from typing import Any

from promptd.errors import BadRequest

# Every top-level prompt field -> what it gives (README "Prompt fields").
FIELD_KINDS = {
    "prompt_id": "id",
    "prompt_variables": "variables",
    "inputs": "variables",
    "prompt_version": "version",
    "version_id": "version",
    "environment": "environment",
    "prompt_environment": "environment",
    "prompt_label": "environment",
}
# The keys of the `prompt` object (OpenAI Responses style) -> what each gives.
PROMPT_OBJECT_KINDS = {"id": "id", "prompt_id": "id", "version": "version", "variables": "variables"}
PROMPT_FIELDS = frozenset({*FIELD_KINDS, "prompt"})


class PromptRef:
    """What the request asked for, with every spelling folded into one.
    `version_alias` (from `version_id`) names a version alias, else a number."""

    __slots__ = ("id", "version", "version_alias", "environment", "variables", "sticky_key")

    def __init__(
        self,
        id: str,
        version: int | None = None,
        environment: str | None = None,
        variables: dict[str, Any] | None = None,
        version_alias: str | None = None,
    ) -> None:
        self.id = id
        self.version = version
        self.version_alias = version_alias
        self.environment = environment
        self.variables = variables
        self.sticky_key: str | None = None  # the x-promptd-sticky-key header, when sent


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
    """Remove the prompt fields from `body` and return what they ask for; None
    when the request has no prompt field (a field whose value is null is absent,
    and is removed too)."""
    if PROMPT_FIELDS.isdisjoint(body):
        return None
    # The common request: `prompt_id` (no selector) and perhaps `prompt_variables`.
    prompt_id = body.get("prompt_id")
    if prompt_id.__class__ is str and prompt_id and "@" not in prompt_id:
        variables = body.get("prompt_variables")
        if (variables is None or variables.__class__ is dict) and len(PROMPT_FIELDS.intersection(body)) == 1 + (
            "prompt_variables" in body
        ):
            del body["prompt_id"]
            body.pop("prompt_variables", None)
            return PromptRef(prompt_id, variables=variables)
    given: dict[str, list[tuple[str, Any]]] = {"id": [], "variables": [], "version": [], "environment": []}
    prompt = body.pop("prompt", None)
    if prompt is not None:
        if prompt.__class__ is not dict:
            raise _fail("`prompt` must be an object {id, version?, variables?}", "prompt")
        for key, value in prompt.items():
            kind = PROMPT_OBJECT_KINDS.get(key)
            if kind is None:
                raise _fail(f"`prompt` has unknown key `{clip(key)}` (allowed: id, version, variables)", "prompt")
            if value is not None:
                given[kind].append((f"prompt.{key}", value))
        if not given["id"]:
            raise _fail("`prompt` needs an `id`", "prompt.id")
    for name, kind in FIELD_KINDS.items():
        if name in body:
            value = body.pop(name)
            if value is not None:
                given[kind].append((name, value))
    if not any(given.values()):
        return None

    id_field = _one(given["id"], "the prompt id")
    if id_field is None:
        first = next(name for found in given.values() for name, _ in found)
        raise _fail(f"`{first}` was given without `prompt_id`", "prompt_id")
    id_name, prompt_id = id_field
    if prompt_id.__class__ is not str or not prompt_id:
        raise _fail(f"`{id_name}` must be a non-empty string", id_name)
    if "@" in prompt_id:
        try:
            prompt_id, version, environment = parse_selector(prompt_id)
        except ValueError as exc:
            raise _fail(f"`{id_name}` {exc}", id_name) from None
        if version is not None:
            given["version"].append((f"{id_name} (@{version})", version))
        else:
            given["environment"].append((f"{id_name} (@{clip(environment or '')})", environment))

    ref = PromptRef(prompt_id)
    version_field = _one(given["version"], "the prompt version")
    environment_field = _one(given["environment"], "the prompt environment")
    if version_field and environment_field:
        raise _fail(
            f"give a version (`{version_field[0]}`) or an environment (`{environment_field[0]}`), not both",
            environment_field[0],
        )
    if version_field:
        name, value = version_field
        if name == "version_id":
            if value.__class__ is int and value >= 1:
                value = str(value)
            if value.__class__ is not str or not value:
                raise _fail("`version_id` must be a version alias or a positive version number", name)
            ref.version_alias = value
        else:
            ref.version = _version_number(name, value)
    if environment_field:
        name, environment = environment_field
        if environment.__class__ is not str or not environment:
            raise _fail(f"`{name}` must be a non-empty string", name)
        ref.environment = environment
    variables_field = _one(given["variables"], "the prompt variables")
    if variables_field:
        name, values = variables_field
        if values.__class__ is not dict:
            raise _fail(f"`{name}` must be an object of variable values", name)
        ref.variables = values
    return ref


_CLIP = 128


def clip(text: str) -> str:
    """A client string as it may appear in an error or a log line: at most
    128 characters, with `...` when cut."""
    return text if len(text) <= _CLIP else text[:_CLIP] + "..."


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
