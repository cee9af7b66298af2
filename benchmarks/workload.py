"""The prompts and request bodies every benchmark uses, and the config writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

SMALL_PROMPT = """
id = "small"
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "You are a support agent for {{company}}." },
  { role = "user", content = "Customer {{customer_name}} asks about {{issue_type}}." },
]
[versions.params]
temperature = 0.2
"""

SMALL_BODY = {
    "prompt_id": "small",
    "prompt_variables": {"company": "Acme", "customer_name": "Sarah", "issue_type": "billing"},
}

# The small prompt again as two versions behind a 50/50 rollout; the mock's answers carry usage.
ROLLOUT_PROMPT = SMALL_PROMPT.replace(
    'id = "small"', 'id = "small_rollout"\n[environments]\nproduction = { "1" = 50, "2" = 50 }'
) + SMALL_PROMPT.split('id = "small"', 1)[1].replace("version = 1", "version = 2")
ROLLOUT_BODY = {**SMALL_BODY, "prompt_id": "small_rollout", "user": "user-1234"}
# The same request to the small prompt without a rollout: the rollout's paired reference.
SMALL_USER_BODY = {**SMALL_BODY, "user": "user-1234"}

# Body sizes of the large-body scenarios: a conversation of about this many bytes.
BODY_SIZES = {"1kb": 1_000, "100kb": 100_000, "1mb": 1_000_000}
_WORDS = "the customer asks about an order that arrived late and wants to know when the refund will be paid".split()


def conversation(size: int) -> list[dict[str, str]]:
    """Alternating user/assistant turns of plain text, about `size` bytes of JSON in all."""
    messages: list[dict[str, str]] = []
    total, index = 0, 0
    while total < size - 60:
        room = min(2000, size - total - 40)
        text = " ".join(_WORDS[(index + i) % len(_WORDS)] for i in range(max(1, room // 6)))[: max(1, room)]
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
        total += len(text) + 36
        index += 1
    return messages


def sized_bodies(size: int) -> tuple[bytes, bytes]:
    """(a passthrough body, a compiled body) carrying a conversation of about `size` bytes,
    with `messages` first, as the OpenAI SDKs send it."""
    messages = conversation(size)
    plain = body_bytes({"messages": messages, "model": "gpt-4o-mini"})
    compiled = body_bytes({"messages": messages, **SMALL_BODY})
    return plain, compiled


def large_prompt() -> str:
    """20 messages, 40 variables, 2 sections (one a list, one a flag)."""
    messages = []
    for i in range(20):
        a, b = (2 * i) % 38, (2 * i + 1) % 38
        content = f"Step {i}: consider {{{{v{a}}}}} together with {{{{v{b}}}}} and answer precisely."
        if i == 5:
            content += " {{#items}}- {{name}}: {{qty}}\\n{{/items}}"
        if i == 12:
            content += " {{#urgent}}This is urgent.{{/urgent}}{{^urgent}}No rush.{{/urgent}}"
        messages.append(f'  {{ role = "{"system" if i == 0 else "user"}", content = "{content}" }},')
    variables = [f'v{n} = {{ type = "string" }}' for n in range(38)]
    variables += ['items = { type = "array" }', 'urgent = { type = "boolean", default = false }']
    return (
        'id = "large"\n[[versions]]\nversion = 1\nmodel = "gpt-4o-mini"\nmessages = [\n'
        + "\n".join(messages)
        + "\n]\n[versions.params]\ntemperature = 0.5\nmax_tokens = 256\n[versions.variables]\n"
        + "\n".join(variables)
        + "\n"
    )


LARGE_BODY = {
    "prompt_id": "large",
    "prompt_variables": {
        **{f"v{n}": f"value number {n}" for n in range(38)},
        "items": [{"name": "pen", "qty": 2}, {"name": "ink", "qty": 1}, {"name": "pad", "qty": 5}],
        "urgent": True,
    },
}

PLAIN_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}


def many_prompt(index: int) -> str:
    versions = "".join(
        f'[[versions]]\nversion = {v}\nmodel = "gpt-4o-mini"\n'
        f'messages = [{{ role = "system", content = "Prompt {index} version {v} for {{{{name}}}}." }}]\n'
        for v in (1, 2, 3)
    )
    return f'description = "generated prompt {index}"\n[environments]\nproduction = 2\n' + versions


def write_config(root: Path, upstream_port: int, *, many: int = 0, watch: bool = True) -> Path:
    """A config dir with the small and large prompts and `many` generated ones."""
    prompts = root / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    (prompts / "small.toml").write_text(SMALL_PROMPT)
    (prompts / "small_rollout.toml").write_text(ROLLOUT_PROMPT)
    (prompts / "large.toml").write_text(large_prompt())
    if many:
        generated = prompts / "generated"
        generated.mkdir(exist_ok=True)
        for index in range(many):
            (generated / f"gen_{index:05d}.toml").write_text(many_prompt(index))
    (root / "promptd.toml").write_text(
        f"""
[server]
host = "127.0.0.1"
shutdown_grace_s = 2

[prompts]
paths = ["prompts"]
watch = {json.dumps(watch)}

[[upstreams]]
name = "mock"
base_url = "http://127.0.0.1:{upstream_port}/v1"
models = ["*"]
"""
    )
    return root


def body_bytes(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (steadier than req/s on a shared machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sleeps(pid: int) -> int:
    """How many times the process's main thread (the event loop) went to sleep:
    its voluntary context switches. Each costs a wake-up later, which on a
    virtual machine is tens of µs of CPU."""
    return _status(pid, "voluntary_ctxt_switches")


def peak_rss_mb(pid: int) -> float:
    return _status(pid, "VmHWM") / 1024


def _status(pid: int, field: str) -> int:
    """One number from /proc/<pid>/status (0 when it is not there)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
