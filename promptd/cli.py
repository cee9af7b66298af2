"""The `promptd` command (README "CLI").

Every startup problem is a `ConfigError`: printed one line per problem, never
a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson

from promptd import __version__, authoring, editing
from promptd.compiler.fields import PromptRef, parse_selector
from promptd.compiler.preview import preview
from promptd.compiler.resolve import find_prompt, resolve
from promptd.errors import ConfigError, PromptdError
from promptd.ops.logs import LOG_LEVELS, setup_logging
from promptd.prompts.lock import lock_path, read_lock, violations, write_lock
from promptd.prompts.promptset import PromptLoader, PromptSet
from promptd.settings import (
    DEFAULT_CONFIG,
    HELP,
    SERVER_FLAGS,
    Settings,
    find_config_file,
    load_settings,
    with_overrides,
)
from promptd.structs import TomlError, parse_toml
from promptd.upstreams.routing import Router

log = logging.getLogger("promptd")


class _Parser(argparse.ArgumentParser):
    """A usage error is one line naming the flag or value: no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="promptd", description="A prompt-compiling gateway for the OpenAI API.")
    parser.add_argument("--version", action="version", version=f"promptd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = f"a promptd.toml, or a directory holding one (default: ./{DEFAULT_CONFIG})"

    serve = commands.add_parser(
        "serve", help="run the gateway", description="Example: promptd serve config --port 8080 --workers 2"
    )
    serve.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    for key, flag in SERVER_FLAGS.items():
        kind = str if key == "host" else int
        serve.add_argument(flag, type=kind, help=f"overrides server.{key}: {HELP['server.' + key]}")
    serve.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="default: info")

    validate = commands.add_parser(
        "validate",
        help="load and check the config and every prompt file",
        description="Example: promptd validate config (prints every problem; exit 1 if any)",
    )
    validate.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)

    render = commands.add_parser(
        "render",
        help="print the body a request for PROMPT_ID would send upstream",
        description="Example: promptd render customer_support config --var customer_name=Sarah --var issue_type=billing",
    )
    render.add_argument("prompt_id", metavar="PROMPT_ID", help="a prompt id; id@3 and id@staging work too")
    render.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    which = render.add_mutually_exclusive_group()
    which.add_argument("--version", dest="prompt_version", type=int, metavar="N", help="render version N")
    which.add_argument("--environment", metavar="E", help="render the version environment E points at")
    render.add_argument("--model", help="the model to send when the prompt version sets none")
    render.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a variable (repeatable)")
    render.add_argument("--vars-json", metavar="JSON", help="variables as one JSON object")
    render.add_argument("--sticky-key", metavar="KEY", help="the sticky key a rollout picks the version by")
    render.add_argument(
        "--api",
        choices=("chat", "responses"),
        default="chat",
        help="the body for Chat Completions (default) or Responses",
    )

    listing = commands.add_parser(
        "list",
        help="every prompt: id, model, versions, environments, variables, file",
        description="Example: promptd list config --json",
    )
    listing.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    listing.add_argument("--json", action="store_true", help="JSON for scripts")

    show = commands.add_parser(
        "show",
        help="one version as written (templates unrendered)",
        description="Example: promptd show customer_support@staging config",
    )
    show.add_argument("selector", metavar="ID[@N|@ENV]", help="without @: the version a request without one gets")
    show.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    show.add_argument("--json", action="store_true", help="JSON for scripts")

    test = commands.add_parser(
        "test",
        help="run the prompts' [[tests]]; exit 1 on any failure",
        description="Example: promptd test config customer_support",
    )
    test.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    test.add_argument("ids", nargs="*", metavar="ID", help="only these prompts (after CONFIG)")

    promote = commands.add_parser(
        "promote",
        help="set environments.ENV = VERSION in the prompt's file",
        description="Example: promptd promote customer_support production 3 config",
    )
    promote.add_argument("prompt_id", metavar="ID")
    promote.add_argument("environment", metavar="ENV")
    promote.add_argument("version", metavar="VERSION", type=int)
    promote.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)

    new_version = commands.add_parser(
        "new-version",
        help="append version latest+1, a copy of N (default latest)",
        description="Example: promptd new-version customer_support config --from 2",
    )
    new_version.add_argument("prompt_id", metavar="ID")
    new_version.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    new_version.add_argument("--from", dest="source", type=int, metavar="N", help="the version to copy")

    lock = commands.add_parser(
        "lock",
        help="write prompts.lock (every version's hash); --check: exit 1 if a locked version changed",
        description="Example: promptd lock config --check",
    )
    lock.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)
    lock.add_argument("--check", action="store_true", help="change nothing; exit 1 if a locked version changed")

    diff = commands.add_parser(
        "diff",
        help="a unified diff of two versions (numbers or environments)",
        description="Example: promptd diff customer_support 2 staging config",
    )
    diff.add_argument("prompt_id", metavar="ID")
    diff.add_argument("a", metavar="A", help="a version number or an environment")
    diff.add_argument("b", metavar="B", help="a version number or an environment")
    diff.add_argument("config", nargs="?", metavar="CONFIG", help=config_help)

    importing = commands.add_parser(
        "import",
        help="translate prompts from dotprompt, LiteLLM or Langfuse into promptd files",
        description="Example: promptd import langfuse export.json --out config/prompts",
    )
    importing.add_argument(
        "format", metavar="FORMAT", choices=("dotprompt", "litellm", "langfuse"), help="dotprompt | litellm | langfuse"
    )
    importing.add_argument("source", metavar="SOURCE", help="a file, or a directory of them")
    importing.add_argument(
        "--out", default="prompts", metavar="DIR", help="where the TOML files go (default ./prompts)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    setup_logging("warning")
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command in ("list", "show", "diff"):
            return _authoring(args)
        if args.command == "lock":
            return _lock(args)
        if args.command == "test":
            return _test(args)
        if args.command in ("promote", "new-version"):
            return _edit(args)
        if args.command == "import":
            return _import(args)
        return _render(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1


def _load(config: str | None) -> tuple[Settings, PromptSet]:
    settings = load_settings(config)
    return settings, PromptLoader(
        settings.prompt_dirs, lock_path(settings.config_path), settings.default_environment
    ).build()


def _serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        settings, prompts = _load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        settings = with_overrides(settings, {"host": args.host, "port": args.port, "workers": args.workers})
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"promptd: {problem}", file=sys.stderr)
        return 2
    for warning in prompts.warnings:
        log.warning(warning)
    from promptd import server  # the serving side is needed only here

    if settings.workers > 1 and not os.environ.get(server.WORKER_ENV):
        return server.supervise(settings, args.log_level)
    return server.run_worker(settings, prompts)


def _prompt_dirs_anyway(config: str | None) -> tuple[Path, ...]:
    """The prompt directories a config names, read leniently (its other problems are reported already)."""
    try:
        path = find_config_file(config)
        parsed = parse_toml(path.read_bytes())
    except (ConfigError, TomlError, OSError):
        return ()
    section = parsed.get("prompts") if isinstance(parsed.get("prompts"), dict) else {}
    paths = section.get("paths", ["prompts"])
    if not isinstance(paths, list) or not all(isinstance(item, str) for item in paths):
        return ()
    return tuple(d for d in (path.parent / item for item in paths) if d.is_dir())


def _validate(args: argparse.Namespace) -> int:
    problems: list[str] = []
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        problems += exc.problems
        settings = None
    prompts = None
    # With a broken config, the prompt files are still checked, where its paths point.
    dirs = settings.prompt_dirs if settings is not None else _prompt_dirs_anyway(args.config)
    lock = lock_path(settings.config_path) if settings is not None else None
    environment = settings.default_environment if settings is not None else "production"
    if dirs:
        try:
            prompts = PromptLoader(dirs, lock, environment).build()
        except ConfigError as exc:
            problems += exc.problems
            for warning in exc.warnings:
                print(f"warning: {warning}", file=sys.stderr)
    if prompts is not None:
        for warning in prompts.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        print(f"{len(problems)} {noun} found", file=sys.stderr)
        return 1
    assert settings is not None and prompts is not None
    print(f"ok: {len(prompts.prompts)} prompts, {prompts.version_count} versions ({settings.config_path})")
    return 0


# The request field an error names -> the flag of `promptd render` that sets it.
_RENDER_FLAGS = {
    "prompt_variables": "--var/--vars-json",
    "prompt_version": "--version",
    "environment": "--environment",
    "model": "--model",
}


def _render(args: argparse.Namespace) -> int:
    settings, prompts = _load(args.config)
    try:
        prompt_id, version, environment = parse_selector(args.prompt_id)
    except ValueError as exc:
        return _fail(f"PROMPT_ID {args.prompt_id!r} {exc}")
    if (version is not None or environment is not None) and (args.prompt_version is not None or args.environment):
        return _fail(f"{args.prompt_id}: give the version either with @ or with --version/--environment, not both")
    version = version if version is not None else args.prompt_version
    environment = environment or args.environment
    variables: dict[str, Any] = {}
    if args.vars_json:
        try:
            variables = orjson.loads(args.vars_json)
        except orjson.JSONDecodeError as exc:
            return _fail(f"--vars-json is not valid JSON: {exc}")
        if not isinstance(variables, dict):
            return _fail("--vars-json must be a JSON object")
    body: dict[str, Any] = {}
    if version is not None:
        body["version"] = version
    if environment is not None:
        body["environment"] = environment
    if args.model:
        body["model"] = args.model
    body["api"] = args.api
    if args.sticky_key:
        body["sticky_key"] = args.sticky_key
    try:
        ref = PromptRef(prompt_id, version, environment)
        types = {
            rule.name: rule.type for rule in resolve(prompts, ref, settings.default_environment).version.rules.rules
        }
        for item in args.var:
            name, sep, value = item.partition("=")
            if not sep or not name:
                return _fail(f"--var {item!r}: expected NAME=VALUE")
            variables[name] = _typed_value(value, types.get(name, "string"))
        body["variables"] = variables
        answer = preview(
            prompts, Router(settings.upstreams), settings.default_environment, prompt_id, body, require_model=False
        )
    except PromptdError as exc:
        return _fail(_render_error(exc))
    used = f"version {answer['version']}"
    if answer["rollout"]:
        used += f" (rollout: {answer['rollout']})"
    used += (
        f" (environment {answer['environment']})" if answer["environment"] else " (no environment: latest or pinned)"
    )
    print(f"promptd: {answer['prompt_id']} {used}, hash {answer['hash']}", file=sys.stderr)
    if answer["upstream"] is None:
        print("promptd: note: neither the version nor --model sets a model; the body has none", file=sys.stderr)
    else:
        print(f"promptd: upstream {answer['upstream']}", file=sys.stderr)
    if answer["dropped_params"]:
        print(f"promptd: not sent (no Responses equivalent): {', '.join(answer['dropped_params'])}", file=sys.stderr)
    sys.stdout.write(orjson.dumps(answer["body"], option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _edit(args: argparse.Namespace) -> int:
    settings, prompts = _load(args.config)
    try:
        prompt = find_prompt(prompts, args.prompt_id)
    except PromptdError as exc:
        return _fail(exc.message)
    lock = lock_path(settings.config_path)
    if args.command == "promote":
        print(editing.promote(prompt, args.environment, args.version, lock))
    else:
        print(editing.new_version(prompt, args.source, lock))
    return 0


def _import(args: argparse.Namespace) -> int:
    from promptd.importers import run_import  # YAML and the translators load only here

    result = run_import(args.format, Path(args.source), Path(args.out))
    for path, prompt in result.written:
        versions = ", ".join(str(v.number) for v in prompt.versions)
        environments = ", ".join(f"{name}={number}" for name, number in prompt.environments.items())
        print(f"wrote {path}: {prompt.id}, versions {versions}{f' ({environments})' if environments else ''}")
    for problem in result.problems:
        print(problem, file=sys.stderr)
    print(
        f"{len(result.written)} prompt file(s) written, {len(result.problems)} problem(s)"
        + (": see above; the constructs listed were not translated" if result.problems else ""),
        file=sys.stderr if result.problems else sys.stdout,
    )
    return 1 if result.problems else 0


def _test(args: argparse.Namespace) -> int:
    settings, prompts = _load(args.config)
    lines, passed, failed = authoring.run_tests(
        prompts, Router(settings.upstreams), settings.default_environment, args.ids
    )
    for line in lines:
        print(line)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _lock(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    path = lock_path(settings.config_path)
    prompts = PromptLoader(settings.prompt_dirs, None, settings.default_environment).build()  # the lock: below
    locked = read_lock(path)
    problems = violations(locked, prompts.prompts, str(path)) if locked is not None else []
    if args.check:
        for problem in problems:
            print(problem, file=sys.stderr)
        if locked is None:
            return _fail(f"{path}: no lock file (run `promptd lock` to write one)")
        if problems:
            print(f"{len(problems)} locked version(s) changed", file=sys.stderr)
            return 1
        print(f"ok: {sum(map(len, locked.values()))} locked versions unchanged ({path})")
        return 0
    write_lock(path, prompts.prompts)
    versions = sum(len(p.versions) for p in prompts.prompts.values())
    print(f"wrote {path}: {len(prompts.prompts)} prompts, {versions} versions")
    for problem in problems:
        print(f"note: accepted the change: {problem}", file=sys.stderr)
    return 0


def _authoring(args: argparse.Namespace) -> int:
    settings, prompts = _load(args.config)
    default_environment = settings.default_environment
    try:
        if args.command == "list":
            entries = authoring.catalog(prompts, default_environment)
            text = orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode() + "\n" if args.json else None
            sys.stdout.write(text or authoring.list_text(entries))
        elif args.command == "show":
            prompt, version, how = authoring.pick(prompts, default_environment, args.selector)
            written = authoring.as_written(version)
            if args.json:
                sys.stdout.write(orjson.dumps({"id": prompt.id, **written}, option=orjson.OPT_INDENT_2).decode() + "\n")
            else:
                sys.stdout.write(authoring.show_text(prompt, written, how))
        else:
            sys.stdout.write(authoring.diff_text(prompts, default_environment, args.prompt_id, args.a, args.b))
    except ValueError as exc:
        return _fail(f"{getattr(args, 'selector', args.command)!r} {exc}")
    except PromptdError as exc:
        return _fail(exc.message)
    return 0


def _render_error(exc: PromptdError) -> str:
    """The request's error, in the words of `promptd render`'s own flags."""
    if exc.details:
        parts = []
        for detail in exc.details:
            expected = detail.get("expected")
            want = f" (expected {expected})" if expected is not None else ""
            parts.append(f"--var {detail['variable']}: {detail['problem'].replace('_', ' ')}{want}")
        return "; ".join(parts)
    flag = _RENDER_FLAGS.get(exc.param or "")
    return f"{flag}: {exc.message}" if flag else exc.message


def _typed_value(text: str, kind: str) -> Any:
    """`--var` values are text; for a non-string variable they are read as JSON."""
    if kind in ("string", "any"):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # the variable check reports the wrong type


def _fail(message: str) -> int:
    print(f"promptd: {message}", file=sys.stderr)
    return 1
