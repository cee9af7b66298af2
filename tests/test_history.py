"""The history placeholder: `{ placeholder = "history" }` puts the request's messages
(or Responses `input` items) at that position, through the HTTP API."""

from __future__ import annotations

import orjson
import pytest
from conftest import write_config

from promptd.errors import ConfigError
from promptd.prompts.promptset import PromptLoader

FRAMED = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "You are terse." },
  { placeholder = "history" },
  { role = "user", content = "Now answer in {{language}}." },
]
"""


async def test_chat_messages_go_where_the_placeholder_stands(make_gateway, upstream):
    client = await make_gateway(prompts={"framed.toml": FRAMED})
    history = [{"role": "user", "content": "hi {{language}}"}, {"role": "assistant", "content": "hello"}]
    body = {"prompt_id": "framed", "prompt_variables": {"language": "German"}, "messages": history}
    response = await client.post("/v1/chat/completions", data=orjson.dumps(body))
    assert response.status == 200
    assert upstream.last["body"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi {{language}}"},  # never substituted
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Now answer in German."},
    ]


async def test_responses_input_goes_where_the_placeholder_stands(make_gateway, upstream):
    client = await make_gateway(prompts={"framed.toml": FRAMED})
    body = {"prompt": {"id": "framed", "variables": {"language": "German"}}, "input": "hi"}
    response = await client.post("/v1/responses", data=orjson.dumps(body))
    assert response.status == 200
    sent = upstream.last["body"]
    assert sent["instructions"] == "You are terse."
    assert sent["input"] == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "input_text", "text": "Now answer in German."}]},
    ]


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ('{ placeholder = "history" }, { placeholder = "history" }', "at most one history placeholder per version"),
        ('{ placeholder = "history", role = "user" }', "a placeholder message has no role or content"),
        ('{ role = "user" }', "a message needs a role and content"),
    ],
)
def test_placeholder_load_errors(tmp_path, messages, problem):
    text = f'[[versions]]\nversion = 1\nmodel = "m"\nmessages = [{messages}]\n'
    config = write_config(tmp_path, {"p.toml": text})
    with pytest.raises(ConfigError) as info:
        PromptLoader([config / "prompts"]).build()
    assert any(problem in line for line in info.value.problems), info.value.problems
