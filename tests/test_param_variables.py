"""Variables inside `params`: a string that is exactly one tag is the variable's JSON
value; other strings with tags render as text; compiled at load, through the HTTP API."""

from __future__ import annotations

import orjson
import pytest
from conftest import write_config

from promptd.errors import ConfigError
from promptd.prompts.promptset import PromptLoader

EXTRACT = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [{ role = "user", content = "Extract the fields from: {{text}}" }]
[versions.params]
temperature = 0
[versions.params.response_format]
type = "json_schema"
json_schema = { name = "{{schema_name}}_v1", strict = true, schema = "{{schema}}" }
[[versions.params.tools]]
type = "function"
function = { name = "lookup", description = "Look up in {{catalog}}", parameters = "{{schema}}" }
[versions.variables]
schema = { type = "object" }
schema_name = { default = "fields" }
catalog = { default = "the catalog" }
"""
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_schemas_and_text_in_params(make_gateway, upstream):
    client = await make_gateway(prompts={"extract.toml": EXTRACT})
    body = {"prompt_id": "extract", "prompt_variables": {"text": "I live in Oslo", "schema": SCHEMA}}
    response = await client.post("/v1/chat/completions", data=orjson.dumps(body))
    assert response.status == 200, await response.text()
    sent = upstream.last["body"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "fields_v1", "strict": True, "schema": SCHEMA},
    }
    assert sent["tools"][0]["function"] == {
        "name": "lookup",
        "description": "Look up in the catalog",
        "parameters": SCHEMA,
    }
    assert sent["temperature"] == 0
    responses = await client.post(
        "/v1/responses", data=orjson.dumps({"prompt": {"id": "extract", "variables": {"text": "x", "schema": SCHEMA}}})
    )
    assert responses.status == 200
    assert upstream.last["body"]["text"]["format"]["schema"] == SCHEMA


async def test_a_wrong_type_for_a_schema_variable_is_a_400(make_gateway, upstream):
    client = await make_gateway(prompts={"extract.toml": EXTRACT})
    body = {"prompt_id": "extract", "prompt_variables": {"text": "x", "schema": "not an object"}}
    response = await client.post("/v1/chat/completions", data=orjson.dumps(body))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["details"] == [{"variable": "schema", "problem": "wrong_type", "expected": "object"}]
    assert not upstream.requests


def test_a_bad_tag_in_params_is_a_load_error(tmp_path):
    text = '[[versions]]\nversion = 1\nmodel = "m"\nmessages = [{ role = "user", content = "hi" }]\n[versions.params]\nstop = ["{{#x}}"]\n'
    config = write_config(tmp_path, {"p.toml": text})
    with pytest.raises(ConfigError) as info:
        PromptLoader([config / "prompts"]).build()
    assert info.value.problems == [f'{config}/prompts/p.toml: versions[0].params.stop[0]: unclosed section "x"']
