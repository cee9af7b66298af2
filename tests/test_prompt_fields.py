"""The prompt fields of a request in every spelling, through the real app and a
recording upstream: null fields, `version_id`, aliases, `prompt.prompt_id`,
unused and undeclared variables, and what a 404 says after a failed reload."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from conftest import SUPPORT

VARS = {"name": "Sam", "issue": "billing"}

ALIASED = """
id = "greeter"
aliases = ["pmpt_68abc123", "greeter-old"]

[environments]
production = 1

[[versions]]
version = 1
aliases = ["5f0c7a4e-1111-4a1b-9c1d-000000000001"]
model = "gpt-4o-mini"
messages = [{ role = "user", content = "Hello {{name}}" }]

[[versions]]
version = 2
aliases = ["5f0c7a4e-2222-4a1b-9c1d-000000000002"]
model = "gpt-4o-mini"
messages = [{ role = "user", content = "Hi {{name}}, v2" }]
"""

RECIPE = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [{ role = "user", content = "Give me a recipe for {{dish}} in {{max_words}} words" }]
"""


async def post(client, body, path="/v1/chat/completions"):
    return await client.post(path, data=orjson.dumps(body), headers={"Content-Type": "application/json"})


@pytest.fixture
async def client(make_gateway):
    return await make_gateway(prompts={"support.toml": SUPPORT, "greeter.toml": ALIASED, "recipe.toml": RECIPE})


async def test_null_prompt_fields_are_absent_and_removed(client, upstream):
    response = await post(client, {"model": "gpt-4o-mini", "messages": [], "prompt_id": None, "inputs": None})
    assert response.status == 200
    assert upstream.last["body"] == {"model": "gpt-4o-mini", "messages": []}
    response = await post(
        client, {"prompt_id": "support", "prompt_version": None, "environment": None, "prompt_variables": VARS}
    )
    assert response.status == 200 and response.headers["x-promptd-prompt-version"] == "2"
    assert "prompt_version" not in upstream.last["body"] and "environment" not in upstream.last["body"]
    response = await post(client, {"prompt": {"id": "support", "version": None, "variables": VARS}})
    assert response.headers["x-promptd-prompt-version"] == "2"


async def test_empty_prompt_object_is_a_400_not_a_500(client, upstream):
    response = await post(client, {"prompt": {}})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_prompt_fields"
    assert not upstream.requests


@pytest.mark.parametrize(
    ("fields", "version"),
    [
        ({"prompt_id": "greeter", "version_id": "5f0c7a4e-2222-4a1b-9c1d-000000000002"}, "2"),
        ({"prompt_id": "greeter", "version_id": "1"}, "1"),
        ({"prompt_id": "greeter", "version_id": 2}, "2"),
        ({"prompt_id": "pmpt_68abc123"}, "1"),
        ({"prompt": {"prompt_id": "pmpt_68abc123", "version": "2"}}, "2"),
        ({"prompt": {"id": "greeter-old@2"}}, "2"),
    ],
)
async def test_version_ids_and_aliases(client, upstream, fields, version):
    response = await post(client, {**fields, "inputs": {"name": "Ann"}})
    assert response.status == 200, await response.text()
    assert response.headers["x-promptd-prompt-id"] == "greeter"
    assert response.headers["x-promptd-prompt-version"] == version
    body = upstream.last["body"]
    assert "version_id" not in body and "prompt" not in body and "inputs" not in body


async def test_version_id_errors(client, upstream):
    response = await post(client, {"prompt_id": "greeter", "version_id": "nope"})
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "prompt_version_not_found" and error["param"] == "version_id"
    response = await post(client, {"prompt_id": "greeter", "version_id": "1", "prompt_version": 1})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_prompt_fields"
    assert not upstream.requests


async def test_metrics_count_an_alias_under_the_prompts_own_id(client, upstream):
    await post(client, {"prompt_id": "pmpt_68abc123", "inputs": {"name": "Ann"}})
    text = await (await client.get("/metrics")).text()
    assert 'prompt_id="greeter"' in text and "pmpt_68abc123" not in text


async def test_unused_variables_are_named_in_a_header(client, upstream):
    response = await post(
        client, {"prompt_id": "support", "prompt_variables": {**VARS, "compnay": "Typo Inc", "extra": 1}}
    )
    assert response.status == 200
    assert response.headers["x-promptd-unused-variables"] == "compnay,extra"
    response = await post(client, {"prompt_id": "support", "prompt_variables": VARS})
    assert "x-promptd-unused-variables" not in response.headers


async def test_undeclared_variables_take_any_json_value(client, upstream):
    response = await post(client, {"prompt_id": "recipe", "prompt_variables": {"dish": "soup", "max_words": 50}})
    assert response.status == 200, await response.text()
    assert upstream.last["body"]["messages"][0]["content"] == "Give me a recipe for soup in 50 words"
    response = await post(
        client, {"prompt_id": "recipe", "prompt_variables": {"dish": {"name": "soup"}, "max_words": None}}
    )
    assert response.status == 400  # null is missing
    error = (await response.json())["error"]
    assert error["details"] == [{"variable": "max_words", "problem": "missing", "expected": "any"}]


async def test_missing_variable_error_says_how_to_make_it_optional(client, upstream):
    # The seeds' LiteLLM example: prompt_id only, for a template `Give me a recipe for {{dish}}`.
    response = await post(client, {"prompt_id": "recipe"})
    assert response.status == 400
    message = (await response.json())["error"]["message"]
    assert '"dish" is missing' in message
    assert "`default`" in message and "`required = false`" in message


async def test_unknown_prompt_after_a_failed_reload_says_so(make_gateway, tmp_path, upstream):
    client = await make_gateway(prompts={"support.toml": SUPPORT}, watch=True)
    (tmp_path / "config" / "prompts" / "new.toml").write_text("[[versions]]\nversion = 1\nmessages = [")
    for _ in range(60):
        ready = await (await client.get("/readyz")).json()
        if ready["last_reload_error"]:
            break
        await asyncio.sleep(0.05)
    response = await post(client, {"prompt_id": "new"})
    assert response.status == 404
    message = (await response.json())["error"]["message"]
    assert "the last reload failed: " in message and "new.toml" in message
    assert "still serving generation 1" in message


async def test_huge_client_strings_are_clipped_in_errors(client, upstream):
    response = await post(client, {"prompt_id": "x" * 1_000_000})
    assert response.status == 404
    assert len(await response.read()) < 2000
