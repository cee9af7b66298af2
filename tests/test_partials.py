"""Partials: `{{> other_id}}` inserts another prompt's one-message template, resolved
when the set loads; through the HTTP API, with the real watcher for reloads."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from conftest import write_config

from promptd.errors import ConfigError
from promptd.prompts.promptset import PromptLoader

PERSONA = """
[environments]
production = 1
staging = 2

[[versions]]
version = 1
messages = [{ role = "system", content = "You are the {{company}} assistant." }]
[versions.variables]
company = { default = "Acme" }

[[versions]]
version = 2
messages = [{ role = "system", content = "You are the {{company}} helper, v2." }]
[versions.variables]
company = { default = "Acme" }
"""
SAFETY = '[[versions]]\nversion = 1\nmessages = [{ role = "system", content = "Be safe. {{> persona}}" }]\n'
AGENT = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "{{> safety}} Help with {{topic}}." },
  { role = "user", content = "Staging persona: {{> persona@staging}} / pinned: {{> persona@1}}" },
]
"""


def render_body(client, prompt_id, variables):
    return client.post(f"/v1/prompts/{prompt_id}/render", data=orjson.dumps({"variables": variables}))


async def test_partials_are_inserted_with_their_variables(make_gateway, upstream):
    client = await make_gateway(prompts={"persona.toml": PERSONA, "safety.toml": SAFETY, "agent.toml": AGENT})
    response = await render_body(client, "agent", {"topic": "billing", "company": "Globex"})
    answer = await response.json()
    assert answer["body"]["messages"] == [
        {"role": "system", "content": "Be safe. You are the Globex assistant. Help with billing."},
        {
            "role": "user",
            "content": "Staging persona: You are the Globex helper, v2. / pinned: You are the Globex assistant.",
        },
    ]
    described = await (await client.get("/v1/prompts/agent")).json()
    version = described["versions"][0]
    assert version["partials"] == ["persona", "persona@1", "persona@staging", "safety"]
    assert version["variables"]["company"] == {"type": "string", "required": False, "default": "Acme"}
    default = await (await render_body(client, "agent", {"topic": "x"})).json()
    assert default["body"]["messages"][0]["content"] == "Be safe. You are the Acme assistant. Help with x."


async def test_editing_a_partial_changes_the_hash_and_reloads_what_uses_it(make_gateway, upstream):
    client = await make_gateway(
        prompts={"persona.toml": PERSONA, "safety.toml": SAFETY, "agent.toml": AGENT}, watch=True
    )
    before = (await (await client.get("/v1/prompts/agent")).json())["versions"][0]["hash"]
    await asyncio.sleep(0.3)
    path = client.config_dir / "prompts" / "safety.toml"
    path.write_text(SAFETY.replace("Be safe.", "Be very safe."))
    for _ in range(100):
        answer = await (await render_body(client, "agent", {"topic": "x"})).json()
        if answer["body"]["messages"][0]["content"].startswith("Be very safe."):
            break
        await asyncio.sleep(0.05)
    assert answer["body"]["messages"][0]["content"] == "Be very safe. You are the Acme assistant. Help with x."
    after = (await (await client.get("/v1/prompts/agent")).json())["versions"][0]["hash"]
    assert after != before


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (
            {
                "a.toml": SAFETY.replace("persona", "b").replace("Be safe.", "A"),
                "b.toml": SAFETY.replace("persona", "a"),
            },
            "partials form a cycle: ",
        ),
        ({"a.toml": SAFETY.replace("persona", "nope")}, 'partial "nope": no prompt "nope"'),
        (
            {
                "a.toml": SAFETY.replace("persona", "two"),
                "two.toml": '[[versions]]\nversion = 1\nmessages = [{ role = "system", content = "x" }, { role = "user", content = "y" }]\n',
            },
            "must have exactly one text message",
        ),
    ],
)
def test_partial_load_errors(tmp_path, files, problem):
    config = write_config(tmp_path, files)
    with pytest.raises(ConfigError) as info:
        PromptLoader([config / "prompts"]).build()
    assert any(problem in line for line in info.value.problems), info.value.problems


def test_more_than_eight_nested_partials_is_a_load_error(tmp_path):
    files = {f"p{i}.toml": SAFETY.replace("persona", f"p{i + 1}") for i in range(10)}
    files["p10.toml"] = '[[versions]]\nversion = 1\nmessages = [{ role = "system", content = "end" }]\n'
    config = write_config(tmp_path, files)
    with pytest.raises(ConfigError) as info:
        PromptLoader([config / "prompts"]).build()
    assert any("more than 8 nested partials: p0 -> p1" in line for line in info.value.problems), info.value.problems


async def test_the_upstream_receives_the_inserted_partial(make_gateway, upstream):
    client = await make_gateway(prompts={"persona.toml": PERSONA, "safety.toml": SAFETY, "agent.toml": AGENT})
    body = {
        "prompt_id": "agent",
        "prompt_variables": {"topic": "refunds"},
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = await client.post("/v1/chat/completions", data=orjson.dumps(body))
    assert response.status == 200
    assert upstream.last["body"]["messages"][0] == {
        "role": "system",
        "content": "Be safe. You are the Acme assistant. Help with refunds.",
    }
    assert upstream.last["body"]["messages"][-1] == {"role": "user", "content": "hi"}


def test_a_conflicting_declaration_is_a_load_error(tmp_path):
    text = (
        '[[versions]]\nversion = 1\nmodel = "m"\nmessages = [{ role = "system", content = "{{> persona}}" }]\n'
        '[versions.variables]\ncompany = { type = "string", default = "Other" }\n'
    )
    config = write_config(tmp_path, {"persona.toml": PERSONA, "uses.toml": text})
    with pytest.raises(ConfigError) as info:
        PromptLoader([config / "prompts"]).build()
    assert any(
        'variables.company: declared differently here and in partial "persona"' in line for line in info.value.problems
    )
