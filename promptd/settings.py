"""The daemon config, `promptd.toml`: decoded into frozen structs, then resolved.

Two phases, as TensorZero does it: `msgspec` decodes the file against the
schema (unknown keys and wrong types are errors with a key path), then
`resolve_settings` cross-checks it and resolves `env:` references into a
`Settings` object that the rest of promptd uses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from promptd.errors import ConfigError
from promptd.structs import Strict, TomlError, check_all, describe_decode_error, format_problem, parse_toml
from promptd.upstreams.client import Target

CONFIG_FILE_NAME = "promptd.toml"
DEFAULT_CONFIG = "config"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class ServerSection(Strict):
    host: str = "127.0.0.1"
    port: Port = 8080
    workers: Positive = 1
    max_body_bytes: Positive = 32 * 1024 * 1024
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    client_timeout_s: Seconds = 60.0
    keepalive_timeout_s: Seconds = 75.0


class PromptsSection(Strict):
    paths: list[str] = msgspec.field(default_factory=lambda: ["prompts"])
    watch: bool = True
    default_environment: str = "production"


class UpstreamSection(Strict):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    type: Literal["openai", "echo"] = "openai"
    base_url: str | None = None
    api_key: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    connect_timeout_s: Seconds = 10.0
    read_timeout_s: Seconds = 600.0
    default: bool = False


class AuthSection(Strict):
    api_keys: str | None = None


class UiSection(Strict):
    enabled: bool = True


class ConfigFile(Strict):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    prompts: PromptsSection = msgspec.field(default_factory=PromptsSection)
    upstreams: list[UpstreamSection] = msgspec.field(default_factory=list)
    auth: AuthSection = msgspec.field(default_factory=AuthSection)
    ui: UiSection = msgspec.field(default_factory=UiSection)


# Every config key's help: the README's configuration table, `serve --help` and
# tests/test_docs.py are made from this table and the structs' defaults (`reference`).
HELP: dict[str, str] = {
    "server.host": "listen address (loopback: a sidecar)",
    "server.port": "listen port",
    "server.workers": "processes serving the port; >1: the parent binds it once and the workers share that socket",
    "server.max_body_bytes": "larger request bodies get 413 `body_too_large`",
    "server.shutdown_grace_s": "on SIGTERM: stop accepting, let in-flight requests and streams finish this long; then open streams get a final `shutting_down` SSE error event and close",
    "server.client_timeout_s": "a client must send its request line, headers and body within this; else the connection is closed (a stalled body gets 408 `request_timeout`)",
    "server.keepalive_timeout_s": "an idle keep-alive client connection is closed after this",
    "prompts.paths": "directories of `*.toml` / `*.json` prompt files, searched recursively",
    "prompts.watch": "hot reload on change",
    "prompts.default_environment": "used when a request names no version or environment",
    "upstreams[].name": "unique; appears in metrics and logs",
    "upstreams[].type": '`"openai"` (any OpenAI-compatible API) or `"echo"` (built in, answers locally)',
    "upstreams[].base_url": "required for `openai`: the URL the API paths are appended to, e.g. `https://api.openai.com/v1`",
    "upstreams[].api_key": "`env:NAME`, never a literal; unset variable: the client's `Authorization` is passed through",
    "upstreams[].models": "required: glob patterns of models routed here; first match wins",
    "upstreams[].connect_timeout_s": "longest wait for a TCP (and TLS) connection",
    "upstreams[].read_timeout_s": "longest silence from the upstream while waiting for or reading its answer",
    "upstreams[].default": "where model-less `/v1/` requests (e.g. `GET /v1/models`) go",
    "auth.api_keys": "`env:NAME` holding comma-separated keys; when set, every endpoint but `/healthz`, `/metrics` and the console's page and files needs `Authorization: Bearer <key>`",
    "ui.enabled": "serve the read-only prompt console at `/ui`; `false`: `/ui` is a 404 like any unknown path",
}


def reference() -> list[tuple[str, str, str]]:
    """(key, default, help) for every config key, in file order."""
    sections: list[tuple[str, type[Strict]]] = [
        ("server", ServerSection),
        ("prompts", PromptsSection),
        ("upstreams[]", UpstreamSection),
        ("auth", AuthSection),
        ("ui", UiSection),
    ]
    rows = []
    for section, struct in sections:
        for info in msgspec.structs.fields(struct):
            key = f"{section}.{info.name}"
            if info.default is not msgspec.NODEFAULT:
                default = info.default
            elif info.default_factory is not msgspec.NODEFAULT:
                default = info.default_factory()
            else:
                default = msgspec.NODEFAULT
            if default is msgspec.NODEFAULT:
                text = "required"
            elif default is None:
                text = "unset"
            else:
                text = f"`{msgspec.json.encode(default).decode().replace(',', ', ')}`"
            rows.append((key, text, HELP[key]))
    return rows


def reference_markdown() -> str:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | {default} | {text} |" for key, default, text in reference()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    name: str
    type: str
    base_url: str
    api_key: str | None  # the resolved secret, or None to pass the client's header through
    models: tuple[str, ...]
    connect_timeout_s: float
    read_timeout_s: float
    default: bool

    def __repr__(self) -> str:  # never print the key
        return f"UpstreamSettings(name={self.name!r}, type={self.type!r}, base_url={self.base_url!r})"


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path
    host: str
    port: int
    workers: int
    max_body_bytes: int
    shutdown_grace_s: float
    client_timeout_s: float
    keepalive_timeout_s: float
    prompt_dirs: tuple[Path, ...]
    watch: bool
    default_environment: str
    upstreams: tuple[UpstreamSettings, ...]
    api_keys: tuple[str, ...] = field(repr=False)
    ui_enabled: bool = True


_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


def find_config_file(config: str | os.PathLike[str] | None) -> Path:
    """CONFIG is a promptd.toml, or a directory holding one; default ./config."""
    path = Path(config if config is not None else DEFAULT_CONFIG)
    if path.is_dir():
        path = path / CONFIG_FILE_NAME
    if not path.is_file():
        raise ConfigError([f"{path}: no such config file"])
    return path


def load_settings(config: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    path = find_config_file(config)
    try:
        parsed = parse_toml(path.read_bytes())
    except TomlError as exc:
        raise ConfigError([format_problem(str(path), "", f"not valid TOML: {exc}")]) from None
    problems = check_all(parsed, ConfigFile)  # every problem at once, not the first
    if problems:
        raise ConfigError([format_problem(str(path), key, message) for key, message in problems])
    try:
        raw = msgspec.convert(parsed, ConfigFile, str_keys=True)
    except msgspec.ValidationError as exc:
        key, message = describe_decode_error(exc)
        raise ConfigError([format_problem(str(path), key, message)]) from None
    return resolve_settings(raw, path, os.environ if environ is None else environ)


def resolve_settings(raw: ConfigFile, path: Path, environ: Mapping[str, str]) -> Settings:
    problems: list[str] = []

    def problem(key: str, message: str) -> None:
        problems.append(format_problem(str(path), key, message))

    def env_ref(key: str, value: str | None) -> str | None:
        """An `env:NAME` reference resolves to the variable's value; unset means None."""
        if value is None:
            return None
        match = _ENV_REF.match(value)
        if not match:
            problem(key, 'must be a reference "env:NAME", never a literal secret')
            return None
        return environ.get(match[1]) or None

    if not raw.prompts.paths:
        problem("prompts.paths", "needs at least one directory")
    prompt_dirs = tuple(path.parent / p for p in raw.prompts.paths)
    for index, directory in enumerate(prompt_dirs):
        if not directory.is_dir():
            problem(f"prompts.paths[{index}]", f"{directory} is not a directory")

    upstreams: list[UpstreamSettings] = []
    seen: set[str] = set()
    for index, up in enumerate(raw.upstreams):
        key = f"upstreams[{index}]"
        if up.name in seen:
            problem(f"{key}.name", f'duplicate upstream name "{up.name}"')
        seen.add(up.name)
        if not up.models:
            problem(f"{key}.models", "needs at least one model pattern")
        base_url = ""
        if up.type == "echo":
            if up.base_url is not None or up.api_key is not None:
                problem(key, "an echo upstream takes no base_url or api_key")
        elif not up.base_url:
            problem(f"{key}.base_url", "required for an upstream of type openai")
        else:
            try:
                Target(up.base_url)
            except ValueError as exc:
                problem(f"{key}.base_url", str(exc))
            else:
                base_url = up.base_url.rstrip("/")
        upstreams.append(
            UpstreamSettings(
                name=up.name,
                type=up.type,
                base_url=base_url,
                api_key=env_ref(f"{key}.api_key", up.api_key),
                models=tuple(up.models),
                connect_timeout_s=up.connect_timeout_s,
                read_timeout_s=up.read_timeout_s,
                default=up.default,
            )
        )
    if not upstreams:
        problem("upstreams", "needs at least one [[upstreams]] entry")
    if sum(up.default for up in upstreams) > 1:
        problem("upstreams", "at most one upstream can be marked default = true")

    api_keys: tuple[str, ...] = ()
    if raw.auth.api_keys is not None:
        keys = env_ref("auth.api_keys", raw.auth.api_keys)
        api_keys = tuple(k.strip() for k in (keys or "").split(",") if k.strip())
        if not api_keys and _ENV_REF.match(raw.auth.api_keys):
            problem(
                "auth.api_keys",
                f"{raw.auth.api_keys} is unset, empty or holds no key: refusing to serve without keys"
                " (auth never fails open; remove [auth] api_keys to run without auth)",
            )

    if problems:
        raise ConfigError(problems)
    return Settings(
        config_path=path,
        host=raw.server.host,
        port=raw.server.port,
        workers=raw.server.workers,
        max_body_bytes=raw.server.max_body_bytes,
        shutdown_grace_s=raw.server.shutdown_grace_s,
        client_timeout_s=raw.server.client_timeout_s,
        keepalive_timeout_s=raw.server.keepalive_timeout_s,
        prompt_dirs=prompt_dirs,
        watch=raw.prompts.watch,
        default_environment=raw.prompts.default_environment,
        upstreams=tuple(upstreams),
        api_keys=api_keys,
        ui_enabled=raw.ui.enabled,
    )


# `promptd serve` flags -> the [server] key each overrides, checked by that key's own rules.
SERVER_FLAGS = {"host": "--host", "port": "--port", "workers": "--workers"}


def with_overrides(settings: Settings, overrides: Mapping[str, object]) -> Settings:
    """`settings` with `serve`'s --host/--port/--workers applied, each checked as
    the config file's key would be; a `ConfigError` naming the flag otherwise."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return settings
    current = {"host": settings.host, "port": settings.port, "workers": settings.workers}
    try:
        server = msgspec.convert({**current, **given}, ServerSection)
    except msgspec.ValidationError as exc:
        key, message = describe_decode_error(exc)
        raise ConfigError([f"{SERVER_FLAGS.get(key, key)}: {message}"]) from None
    return replace(settings, host=server.host, port=server.port, workers=server.workers)
