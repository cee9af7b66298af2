"""One prompt file: its schema (TOML and JSON share it) and its compiled form.

`compile_prompt_file` decodes the bytes, checks everything README "Prompt files" says,
parses every template once and returns a `Prompt` whose versions render
messages without any parsing.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from typing import Annotated, Any, Literal

import msgspec
import orjson

from promptd.errors import ERROR_CODES
from promptd.prompts.template import HC_TYPES, Template, TemplateSyntaxError, Var
from promptd.prompts.variables import CHECKS, MISSING, TYPES, Rule, Rules
from promptd.structs import (
    Strict,
    TomlError,
    check_all,
    decode_toml,
    describe_decode_error,
    format_problem,
    parse_toml,
)

PROMPT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RESERVED_PARAMS = {
    "model": "set model on the version, not in params",
    "messages": "set messages on the version, not in params",
}

Role = Literal["system", "developer", "user", "assistant", "tool"]


class VariableDecl(Strict):
    type: str = "string"  # checked by hand, so the error names the variable
    default: Any = msgspec.UNSET
    enum: list[Any] | None = None
    description: str | None = None
    required: bool | None = None


class MessageDecl(Strict):
    """A message, or `{ placeholder = "history" }`: where the request's messages go."""

    role: Role | None = None
    content: str | list[dict[str, Any]] | None = None
    placeholder: Literal["history"] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class VersionDecl(Strict):
    version: Annotated[int, msgspec.Meta(ge=1)]
    messages: list[MessageDecl]
    model: str | None = None
    description: str | None = None
    aliases: list[str] = msgspec.field(default_factory=list)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    variables: dict[str, VariableDecl] = msgspec.field(default_factory=dict)


class TestDecl(Strict):
    """A `[[tests]]` entry: run by `promptd test`, ignored by serving."""

    name: str
    version: int | None = None
    environment: str | None = None
    sticky_key: str | None = None
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    messages: list[dict[str, Any]] | None = None
    expect_contains: list[str] | None = None
    expect_messages: list[dict[str, Any]] | None = None
    expect_error: str | None = None


class PromptDecl(Strict):
    versions: Annotated[list[VersionDecl], msgspec.Meta(min_length=1)]
    id: str | None = None
    description: str | None = None
    # environment -> a version, or a weighted rollout {"2": 90, "3": 10}
    environments: dict[str, int | dict[str, int]] = msgspec.field(default_factory=dict)
    aliases: list[str] = msgspec.field(default_factory=list)
    tests: list[TestDecl] = msgspec.field(default_factory=list)


class MessageTemplate:
    """One message of a version. A message without tags is built once and shared."""

    __slots__ = ("static", "role", "template", "parts", "extra")

    def __init__(self, decl: MessageDecl, templates: list[Template | None]) -> None:
        self.role = decl.role
        self.extra = {
            k: v
            for k, v in (("name", decl.name), ("tool_call_id", decl.tool_call_id), ("tool_calls", decl.tool_calls))
            if v is not None
        }
        self.template: Template | None = None
        self.parts: list[tuple[dict[str, Any], Template | None]] | None = None
        if isinstance(decl.content, str):
            self.template = templates[0]
        else:
            self.parts = list(zip(decl.content, templates, strict=True))
        self.static: dict[str, Any] | None = None
        if all(t is None or t.constant is not None for t in templates):
            self.static = self.render({})

    def render(self, context: dict[str, Any]) -> dict[str, Any]:
        if self.static is not None:
            return self.static
        if self.template is not None:
            content: Any = self.template.render(context)
        else:
            content = [
                part if template is None else {**part, "text": template.render(context)}
                for part, template in self.parts  # type: ignore[union-attr]
            ]
        message = {"role": self.role, "content": content}
        if self.extra:
            message.update(self.extra)
        return message


class PromptVersion:
    __slots__ = (
        "prompt_id",
        "number",
        "model",
        "messages",
        "params",
        "param_templates",
        "rules",
        "hash",
        "decl",
        "headers",
        "history_at",
        "partials",
        "derived",
    )

    def __init__(
        self,
        prompt_id: str,
        decl: VersionDecl,
        messages: tuple[MessageTemplate, ...],
        rules: Rules,
        history_at: int | None = None,
        param_templates: Any = None,
        partials: dict[str, str] | None = None,
    ) -> None:
        self.partials = partials or {}  # ref -> the partial version's hash, covered by this hash
        # What an API surface derives from this version once, on first use (Responses params).
        self.derived: dict[str, Any] = {}
        self.history_at = history_at  # where the request's messages go; None: after the prompt's
        # None when no string in `params` holds a tag (then `params` is sent as it is)
        self.param_templates = param_templates
        self.prompt_id = prompt_id
        self.number = decl.version
        self.model = decl.model
        self.messages = messages
        self.params = decl.params
        self.rules = rules
        self.decl = decl
        identity: list[Any] = [prompt_id, msgspec.to_builtins(decl)]
        if self.partials:
            identity.append(self.partials)
        self.hash = content_hash(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS))
        # The response headers naming this version, built once.
        self.headers = (
            ("x-promptd-prompt-id", prompt_id),
            ("x-promptd-prompt-version", str(decl.version)),
            ("x-promptd-prompt-hash", self.hash),
        )

    def render_params(self, context: dict[str, Any]) -> dict[str, Any]:
        if self.param_templates is None:
            return self.params
        return _fill(self.param_templates, context)

    def render_messages(self, context: dict[str, Any]) -> list[dict[str, Any]]:
        return [message.render(context) for message in self.messages]

    def describe(self) -> dict[str, Any]:
        out = msgspec.to_builtins(self.decl)
        out.pop("variables", None)
        out.setdefault("model", None)
        out.setdefault("params", {})
        out["variables"] = self.rules.describe()
        out["partials"] = sorted(self.partials)
        out["hash"] = self.hash
        return out


STICKY_CACHE = 4096  # sticky keys whose version a rollout remembers


class Rollout:
    """A weighted environment: versions in ascending order with their cumulative
    share of the weight, so a bucket in [0, 1) walks to one version. `salt` is
    SHA-256 already fed `prompt id NUL environment NUL`: a sticky key's bucket
    hashes only the key (README "Rollouts")."""

    __slots__ = ("weights", "versions", "bounds", "salt", "labels", "_where", "_sticky")

    def __init__(self, weights: dict[str, int], prompt_id: str = "", environment: str = "") -> None:
        self.weights = weights
        self._where = (prompt_id, environment)
        ordered = sorted((int(version), weight) for version, weight in weights.items())
        total = sum(weight for _, weight in ordered)
        self.versions = tuple(version for version, _ in ordered)
        bounds, running = [], 0
        for _, weight in ordered:
            running += weight
            bounds.append(running / total)
        self.bounds = tuple(bounds)
        self.salt = hashlib.sha256(f"{prompt_id}\0{environment}\0".encode("utf-8", "surrogatepass"))
        # What a choice is called in x-promptd-rollout and the access log, for each version and way.
        self.labels = {
            (version, how): f"{environment} {version} {how}"
            for version in self.versions
            for how in ("sticky", "random")
        }
        # The versions of recent sticky keys: a key's version depends only on the key and
        # these weights, and a user's requests come in runs. A reload builds a new Rollout.
        self._sticky: dict[str, int] = {}

    def pick(self, bucket: float) -> int:
        """The version for a bucket in [0, 1); a version of weight 0 is never picked."""
        index = bisect_right(self.bounds, bucket)
        return self.versions[index if index < len(self.versions) else -1]

    def sticky_pick(self, key: str) -> int:
        """The version for a sticky key (its bucket, remembered for the last keys)."""
        number = self._sticky.get(key)
        if number is None:
            number = self.pick(self.sticky_bucket(key))
            if len(self._sticky) >= STICKY_CACHE:
                self._sticky.clear()
            self._sticky[key] = number
        return number

    def sticky_bucket(self, key: str) -> float:
        """`bucket(prompt id, environment, key)`, from the precomputed salt."""
        digest = self.salt.copy()
        digest.update(key.encode("utf-8", "surrogatepass"))
        return int.from_bytes(digest.digest()[:8], "big") / 2**64

    def covers(self, version: int) -> bool:
        return self.weights.get(str(version), 0) > 0

    def __reduce__(self) -> tuple[Any, ...]:  # sets built in the builder process travel pickled
        return (Rollout, (self.weights, *self._where))


class Prompt:
    __slots__ = (
        "id",
        "description",
        "source",
        "versions",
        "latest",
        "environments",
        "targets",
        "aliases",
        "tests",
        "version_aliases",
        "hash",
    )

    def __init__(self, decl: PromptDecl, prompt_id: str, source: str, versions: dict[int, PromptVersion]) -> None:
        self.id = prompt_id
        self.description = decl.description
        self.source = source
        self.versions = versions
        self.latest = versions[max(versions)]
        self.environments = decl.environments  # as written, for the catalog
        # environment -> its version, or its rollout
        self.targets: dict[str, int | Rollout] = {
            name: target if isinstance(target, int) else Rollout(target, prompt_id, name)
            for name, target in decl.environments.items()
        }
        self.aliases = tuple(decl.aliases)
        self.tests = tuple(decl.tests)
        self.version_aliases = {alias: v.version for v in decl.versions for alias in v.aliases}
        self.hash = content_hash(
            orjson.dumps(
                [prompt_id, decl.description, decl.environments, decl.aliases, [v.hash for v in versions.values()]],
                option=orjson.OPT_SORT_KEYS,
            )
        )


def default_version(prompt: Prompt, default_environment: str) -> PromptVersion:
    """The version a request naming none gets (for a rollout, its heaviest version:
    what the catalog and `promptd show` describe)."""
    target = prompt.targets.get(default_environment)
    if target is None:
        return prompt.latest
    if isinstance(target, int):
        return prompt.versions[target]
    return prompt.versions[max(target.versions, key=lambda version: (target.weights[str(version)], version))]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


class FileResult:
    """What loading one file gave: a prompt, or the problems that kept it out."""

    __slots__ = ("prompt", "problems", "warnings", "deferred")

    def __init__(
        self, prompt: Prompt | None, problems: list[str], warnings: list[str], deferred: bytes | None = None
    ) -> None:
        self.prompt = prompt
        self.problems = problems
        self.warnings = warnings
        # A file whose templates use partials: compiled again, with the whole set at hand
        # (`PromptLoader.assemble`), from these bytes.
        self.deferred = deferred


def decode_prompt_file(source: str, data: bytes) -> PromptDecl:
    if source.endswith(".json"):
        return msgspec.json.decode(data, type=PromptDecl)
    return decode_toml(data, PromptDecl)


def _every_problem(source: str, data: bytes) -> list[tuple[str, str]]:
    try:
        raw = orjson.loads(data) if source.endswith(".json") else parse_toml(data)
        return check_all(raw, PromptDecl)
    except (orjson.JSONDecodeError, TomlError, RecursionError):
        return []


class Deferred(Exception):
    """A template uses a partial and no resolver was given."""


class PartialError(ValueError):
    pass


def compile_prompt_file(source: str, data: bytes, default_id: str, partials: Any = None) -> FileResult:
    """`partials`: an object with `expand(text, used) -> text` (see `promptset.Partials`);
    without one, a file whose templates use partials comes back deferred."""
    try:
        return _compile_prompt_file(source, data, default_id, partials)
    except Deferred:
        return FileResult(None, [], [], deferred=data)


def _compile_prompt_file(source: str, data: bytes, default_id: str, partials: Any) -> FileResult:
    problems: list[str] = []
    warnings: list[str] = []

    def problem(path: str, message: str) -> None:
        problems.append(format_problem(source, path, message))

    try:
        decl = decode_prompt_file(source, data)
    except RecursionError:
        problem("", "nests too deep to be loaded")
        return FileResult(None, problems, warnings)
    except msgspec.ValidationError as exc:
        # The decode stopped at the first problem: find every one, so one run shows them all.
        found = _every_problem(source, data) or [describe_decode_error(exc)]
        for path, message in found:
            problem(path, message)
        return FileResult(None, problems, warnings)
    except (msgspec.DecodeError, UnicodeDecodeError, TomlError) as exc:
        kind = "JSON" if source.endswith(".json") else "TOML"
        problem("", f"not valid {kind}: {exc}")
        return FileResult(None, problems, warnings)

    prompt_id = decl.id if decl.id is not None else default_id
    if not PROMPT_ID.match(prompt_id):
        where = "id" if decl.id is not None else ""
        problem(
            where,
            f'prompt id "{prompt_id}" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit',
        )

    versions: dict[int, PromptVersion] = {}
    for index, version_decl in enumerate(decl.versions):
        key = f"versions[{index}]"
        if version_decl.version in versions:
            problem(f"{key}.version", f"duplicate version {version_decl.version}")
            continue
        version = _compile_version(prompt_id, version_decl, key, problem, warnings, source, partials)
        if version is not None:
            versions[version_decl.version] = version

    seen_aliases: dict[str, str] = {}
    for index, alias in enumerate(decl.aliases):
        if not PROMPT_ID.match(alias):
            problem(
                f"aliases[{index}]",
                f'alias "{alias}" must be 1-128 characters of A-Z a-z 0-9 _ . - starting with a letter or digit',
            )
        elif alias == prompt_id or alias in seen_aliases:
            problem(f"aliases[{index}]", f'alias "{alias}" is given twice (or equals the id)')
        seen_aliases[alias] = ""
    version_aliases: dict[str, str] = {}
    for index, version_decl in enumerate(decl.versions):
        for a_index, alias in enumerate(version_decl.aliases):
            key = f"versions[{index}].aliases[{a_index}]"
            if not alias or len(alias) > 128:
                problem(key, "a version alias is 1-128 characters")
            elif alias in version_aliases:
                problem(key, f'version alias "{alias}" also names {version_aliases[alias]}')
            version_aliases[alias] = f"version {version_decl.version}"

    known = {v.version for v in decl.versions}
    listed = ", ".join(map(str, sorted(known)))
    for index, test in enumerate(decl.tests):
        key = f"tests[{index}]"
        if test.expect_contains is None and test.expect_messages is None and test.expect_error is None:
            problem(key, f'test "{test.name}" needs expect_contains, expect_messages or expect_error')
        if test.version is not None and test.environment is not None:
            problem(key, f'test "{test.name}": give a version or an environment, not both')
        if test.version is not None and test.version not in known:
            problem(f"{key}.version", f"version {test.version} does not exist (versions: {listed})")
        if test.environment is not None and test.environment not in decl.environments:
            problem(f"{key}.environment", f'environment "{test.environment}" does not exist')
        if test.expect_error is not None and test.expect_error not in ERROR_CODES:
            problem(f"{key}.expect_error", f'"{test.expect_error}" is not an error code of promptd')
    for name, target in decl.environments.items():
        if isinstance(target, int):
            if target not in known:
                problem(f"environments.{name}", f"version {target} does not exist (versions: {listed})")
            continue
        if not target:
            problem(f"environments.{name}", "a rollout needs at least one version with a weight")
        for version, weight in target.items():
            if not (version.isascii() and version.isdigit()) or int(version) not in known:
                problem(
                    f"environments.{name}.{version}",
                    f'"{version}" is not a version of this prompt (versions: {listed})',
                )
            if weight < 0:
                problem(f"environments.{name}.{version}", f"weight {weight} is negative")
        if target and all(weight <= 0 for weight in target.values()):
            problem(f"environments.{name}", "a rollout needs at least one positive weight")

    if problems:
        return FileResult(None, problems, warnings)
    return FileResult(Prompt(decl, prompt_id, source, versions), problems, warnings)


def _compile_version(prompt_id, decl: VersionDecl, key: str, problem, warnings: list[str], source: str, partials=None):
    ok = True
    used: dict[str, tuple[str, dict[str, VariableDecl]]] = {}  # partial ref -> (its hash, its declarations)
    templates_used: list[Template] = []
    messages: list[MessageTemplate] = []
    history_at: int | None = None
    for m_index, message in enumerate(decl.messages):
        m_key = f"{key}.messages[{m_index}].content"
        if message.placeholder is not None:
            if message.role is not None or message.content is not None:
                problem(f"{key}.messages[{m_index}]", "a placeholder message has no role or content")
                ok = False
            elif history_at is not None:
                problem(f"{key}.messages[{m_index}]", "at most one history placeholder per version")
                ok = False
            history_at = len(messages)
            continue
        if message.role is None or message.content is None:
            problem(
                f"{key}.messages[{m_index}]", 'a message needs a role and content (or is { placeholder = "history" })'
            )
            ok = False
            continue
        templates: list[Template | None] = []
        if isinstance(message.content, str):
            sources = [(m_key, message.content)]
        else:
            sources = []
            for p_index, part in enumerate(message.content):
                if not isinstance(part.get("type"), str):
                    problem(f"{m_key}[{p_index}].type", "a content part needs a string type")
                    ok = False
                elif part["type"] == "text":
                    if not isinstance(part.get("text"), str):
                        problem(f"{m_key}[{p_index}].text", "a text part needs a string text")
                        ok = False
                    sources.append((f"{m_key}[{p_index}].text", part.get("text")))
                else:
                    sources.append((None, None))
        for t_key, text in sources:
            if t_key is None or not isinstance(text, str):
                templates.append(None)
                continue
            if "{{>" in text:
                if partials is None:
                    raise Deferred
                try:
                    text = partials.expand(text, used, [prompt_id])
                except PartialError as exc:
                    problem(t_key, str(exc))
                    ok = False
                    templates.append(None)
                    continue
            try:
                template = Template(text)
            except TemplateSyntaxError as exc:
                problem(t_key, str(exc))
                ok = False
                templates.append(None)
                continue
            templates_used.append(template)
            templates.append(template)
        if ok:
            messages.append(MessageTemplate(message, templates))

    for name, reason in RESERVED_PARAMS.items():
        if name in decl.params:
            problem(f"{key}.params.{name}", reason)
            ok = False
    if used:  # the partials' declarations become this version's
        merged = dict(decl.variables)
        for ref, (_, declarations) in used.items():
            for name, declaration in declarations.items():
                if name in merged and merged[name] != declaration:
                    problem(f"{key}.variables.{name}", f'declared differently here and in partial "{ref}"')
                    ok = False
                merged.setdefault(name, declaration)
        decl = msgspec.structs.replace(decl, variables=merged)
    param_templates, tagged = _compile_params(decl.params, f"{key}.params", problem)
    if param_templates is _BROKEN:
        ok = False
        param_templates = None
    templates_used += tagged

    # An unparsed template hides the names it uses: no "declared but unused" warnings then.
    rules = _compile_rules(decl, templates_used, key, problem, warnings if ok else [], source)
    if rules is None or not ok:
        return None
    partial_hashes = {ref: digest for ref, (digest, _) in used.items()}
    return PromptVersion(prompt_id, decl, tuple(messages), rules, history_at, param_templates, partial_hashes)


def _compile_rules(decl: VersionDecl, templates: list[Template], key: str, problem, warnings, source) -> Rules | None:
    ok = True
    top: dict[str, None] = {}
    sections: dict[str, None] = {}
    used: set[str] = set()
    typed: dict[str, str] = {}
    for template in templates:
        top.update(dict.fromkeys(template.names))
        sections.update(dict.fromkeys(template.sections))
        used |= template.variables
        for name, kind in template.typed.items():
            if typed.setdefault(name, kind) != kind:
                problem(f"{key}.messages", f'variable "{name}" is typed both {typed[name]} and {kind}')
                ok = False

    rules: list[Rule] = []
    for name, var in decl.variables.items():
        v_key = f"{key}.variables.{name}"
        if var.type not in TYPES:
            problem(f"{v_key}.type", f'unknown type "{var.type}" (types: {", ".join(TYPES)})')
            ok = False
            continue
        check = CHECKS[var.type]
        if (
            name in typed
            and HC_TYPES[typed[name]] != var.type
            and not (typed[name] == "number" and var.type == "integer")
        ):
            problem(f"{v_key}.type", f"declared {var.type} but the template types it {typed[name]}")
            ok = False
        if var.default is not msgspec.UNSET and var.default is not None and not check(var.default):
            problem(f"{v_key}.default", f"default {orjson.dumps(var.default).decode()} is not a {var.type}")
            ok = False
        if var.enum is not None:
            if not var.enum:
                problem(f"{v_key}.enum", "an enum needs at least one value")
                ok = False
            for e_index, value in enumerate(var.enum):
                if not check(value):
                    problem(
                        f"{v_key}.enum[{e_index}]", f"enum value {orjson.dumps(value).decode()} is not a {var.type}"
                    )
                    ok = False
            if var.default is not msgspec.UNSET and var.default not in var.enum:
                problem(f"{v_key}.default", "default is not one of the enum values")
                ok = False
        if name not in used:
            warnings.append(format_problem(source, v_key, f'variable "{name}" is declared but no template uses it'))
        default = MISSING if var.default is msgspec.UNSET or var.default is None else var.default
        required = var.required if var.required is not None else default is MISSING
        rules.append(
            Rule(
                name,
                var.type,
                default=default,
                required=required,
                enum=tuple(var.enum) if var.enum is not None else None,
                description=var.description,
            )
        )
    for name in top:
        if name not in decl.variables:  # undeclared: required, any non-null JSON value
            rules.append(Rule(name, typed.get(name, "any")))
    for name in sections:
        if name not in decl.variables and name not in top:
            rules.append(Rule(name, "any", required=False))
    return Rules(tuple(rules), frozenset(used)) if ok else None


_BROKEN = object()


class _ValueTag:
    """A params string that is exactly one tag: replaced by the variable's JSON value."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _compile_params(params: Any, path: str, problem) -> tuple[Any, list[Template]]:
    """Compile the strings in `params` that hold tags. Returns (a plan for `_fill`,
    or None when nothing is templated, or _BROKEN) and the templates found."""
    walk = _ParamsWalk(problem)
    plan, templated = walk.value(params, path)
    if walk.broken:
        return _BROKEN, walk.found
    return (plan if templated else None), walk.found


class _ParamsWalk:
    """One walk over a version's params. A class, not a recursive closure: a
    closure that calls itself is a reference cycle, which only the cycle
    collector frees, and a build runs with the collector paused and freezes what
    it made (`collector_paused`), so each version's walk would live for good."""

    __slots__ = ("problem", "found", "broken")

    def __init__(self, problem) -> None:
        self.problem = problem
        self.found: list[Template] = []
        self.broken = False

    def value(self, value: Any, where: str) -> tuple[Any, bool]:
        """(what `_fill` makes of `value`, whether it holds a template)."""
        if isinstance(value, str):
            if "{{" not in value:
                return value, False
            try:
                template = Template(value)
            except TemplateSyntaxError as exc:
                self.problem(where, str(exc))
                self.broken = True
                return value, False
            self.found.append(template)
            nodes = template.nodes
            if len(nodes) == 1 and isinstance(nodes[0], Var):
                return _ValueTag(nodes[0].name), True
            return template, True
        if isinstance(value, dict):
            items = {k: self.value(v, f"{where}.{k}") for k, v in value.items()}
            return {k: v for k, (v, _) in items.items()}, any(t for _, t in items.values())
        if isinstance(value, list):
            items_list = [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return [v for v, _ in items_list], any(t for _, t in items_list)
        return value, False


def _fill(plan: Any, context: dict[str, Any]) -> Any:
    cls = plan.__class__
    if cls is _ValueTag:
        return context.get(plan.name)
    if cls is Template:
        return plan.render(context)
    if cls is dict:
        return {k: _fill(v, context) for k, v in plan.items()}
    if cls is list:
        return [_fill(v, context) for v in plan]
    return plan
