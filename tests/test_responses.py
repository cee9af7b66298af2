"""`POST /v1/responses` compiled from promptd's files: the official SDK against the
echo upstream, and the exact body a recording upstream receives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import orjson
import pytest
from conftest import SUPPORT, write_config

ROOT = Path(__file__).parent.parent

AGENT = """
id = "agent"
aliases = ["pmpt_68d1c0ffee"]

[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "You classify tickets for {{company}}." },
  { role = "developer", content = "Answer in JSON." },
  { role = "user", content = "The app crashes." },
  { role = "assistant", content = "{\\"kind\\": \\"bug\\"}" },
  { role = "user", content = "Ticket: {{ticket}}" },
]
[versions.params]
max_tokens = 300
reasoning_effort = "low"
n = 2
stop = ["END"]
temperature = 0.1
tool_choice = { type = "function", function = { name = "file_ticket" } }
[versions.params.response_format]
type = "json_schema"
json_schema = { name = "ticket", strict = true, schema = { type = "object", properties = { kind = { type = "string" } } } }
[[versions.params.tools]]
type = "function"
function = { name = "file_ticket", description = "File it", parameters = { type = "object", properties = {} } }
[versions.variables]
company = { default = "Acme" }
"""

EXPECTED_BODY = {
    "model": "gpt-4o-mini",
    "instructions": "You classify tickets for Acme.\n\nAnswer in JSON.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "The app crashes."}]},
        {"role": "assistant", "content": '{"kind": "bug"}'},
        {"role": "user", "content": [{"type": "input_text", "text": "Ticket: login fails"}]},
    ],
    "max_output_tokens": 300,
    "reasoning": {"effort": "low"},
    "temperature": 0.1,
    "tool_choice": {"type": "function", "name": "file_ticket"},
    "text": {
        "format": {
            "type": "json_schema",
            "name": "ticket",
            "strict": True,
            "schema": {"type": "object", "properties": {"kind": {"type": "string"}}},
        }
    },
    "tools": [
        {
            "type": "function",
            "name": "file_ticket",
            "description": "File it",
            "parameters": {"type": "object", "properties": {}},
        }
    ],
}


@pytest.fixture
async def client(make_gateway):
    return await make_gateway(prompts={"agent.toml": AGENT, "support.toml": SUPPORT})


async def post(client, body, path="/v1/responses"):
    return await client.post(path, data=orjson.dumps(body), headers={"Content-Type": "application/json"})


async def test_the_exact_body_sent_upstream(client, upstream):
    response = await post(client, {"prompt": {"id": "agent", "variables": {"ticket": "login fails"}}})
    assert response.status == 200, await response.text()
    assert upstream.last["path"] == "/v1/responses"
    assert upstream.last["body"] == EXPECTED_BODY
    assert response.headers["x-promptd-prompt-id"] == "agent"
    assert response.headers["x-promptd-prompt-version"] == "1"
    assert response.headers["x-promptd-dropped-params"] == "n,stop"


async def test_request_fields_win_and_are_sent_as_written(client, upstream):
    body = {
        "prompt": {"id": "pmpt_68d1c0ffee", "version": "1", "variables": {"ticket": "t"}},
        "instructions": "Be terse.",
        "input": "And this one?",
        "max_output_tokens": 50,
        "temperature": 0.9,
        "metadata": {"team": "a"},
    }
    response = await post(client, body)
    assert response.status == 200
    sent = upstream.last["body"]
    assert sent["instructions"] == "You classify tickets for Acme.\n\nAnswer in JSON.\n\nBe terse."
    assert sent["input"][-1] == {"role": "user", "content": "And this one?"}
    assert len(sent["input"]) == 4
    assert sent["max_output_tokens"] == 50 and sent["temperature"] == 0.9 and sent["metadata"] == {"team": "a"}
    assert "prompt" not in sent


async def test_a_continued_conversation_gets_instructions_but_not_the_items_again(client, upstream):
    for key, value in (("previous_response_id", "resp_123"), ("conversation", "conv_1")):
        body = {"prompt": {"id": "agent", "variables": {"ticket": "t"}}, key: value, "input": "next"}
        assert (await post(client, body)).status == 200
        sent = upstream.last["body"]
        assert sent[key] == value
        assert sent["instructions"].startswith("You classify tickets for Acme.")
        assert sent["input"] == [{"role": "user", "content": "next"}]


async def test_without_prompt_fields_the_body_is_forwarded_byte_for_byte(client, upstream):
    raw = b'{ "model": "gpt-4o-mini",  "input": "hi", "seed": 123456789012345678901234567890 }'
    response = await client.post("/v1/responses", data=raw)
    assert response.status == 200
    assert upstream.last["raw"] == raw and upstream.last["path"] == "/v1/responses"


async def test_streamed_answers_are_relayed(client, upstream):
    upstream.behaviour = "stream"
    response = await post(client, {"prompt": {"id": "agent", "variables": {"ticket": "t"}}, "stream": True})
    assert response.status == 200
    text = await response.text()
    assert text.count("data: ") == 4 and text.endswith("data: [DONE]\n\n")
    assert upstream.last["body"]["stream"] is True


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"prompt": {"id": "nope"}}, 404, "prompt_not_found"),
        ({"prompt": {"id": "agent", "version": "7"}}, 404, "prompt_version_not_found"),
        ({"prompt": {"id": "agent"}, "environment": "nope"}, 404, "prompt_environment_not_found"),
        ({"prompt": {"id": "agent"}}, 400, "invalid_variables"),
        ({"prompt": {"id": "agent", "version": "1"}, "prompt_version": 1}, 400, "invalid_prompt_fields"),
        ({"prompt": {"id": "agent", "variables": {"ticket": "t"}}, "input": 3}, 400, "invalid_messages"),
        ({"prompt": {"id": "agent", "variables": {"ticket": "t"}}, "model": "claude-3"}, 200, None),
        ({"model": "zzz", "input": "x"}, 400, "no_upstream_for_model"),
        ({"input": "x"}, 400, "model_required"),
        (["not", "an", "object"], 400, "invalid_json"),
    ],
)
async def test_errors(client, upstream, body, status, code):
    response = await post(client, body)
    assert response.status == status, await response.text()
    if code is not None:
        assert (await response.json())["error"]["code"] == code


async def test_metrics_and_logs_name_the_responses_endpoint(client, upstream):
    await post(client, {"prompt": {"id": "agent", "variables": {"ticket": "t"}}})
    metrics = await (await client.get("/metrics")).text()
    assert 'endpoint="responses",prompt_id="agent"' in metrics


async def test_render_previews_the_responses_body(client, upstream):
    response = await client.post(
        "/v1/prompts/agent/render", data=orjson.dumps({"api": "responses", "variables": {"ticket": "login fails"}})
    )
    answer = await response.json()
    assert (
        answer["body"] == EXPECTED_BODY and answer["dropped_params"] == ["n", "stop"] and answer["api"] == "responses"
    )
    assert not upstream.requests


def test_cli_render_api_responses(tmp_path):
    config = write_config(tmp_path, {"agent.toml": AGENT})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "promptd",
            "render",
            "agent",
            str(config),
            "--api",
            "responses",
            "--var",
            "ticket=login fails",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED_BODY
    assert "not sent (no Responses equivalent): n, stop" in result.stderr


# -- the official SDK against the echo upstream ---------------------------------------------------


@pytest.fixture
async def sdk(make_gateway):
    """The agent prompt on the echo model: the answer is what the upstream received."""
    client = await make_gateway(prompts={"agent.toml": AGENT.replace('model = "gpt-4o-mini"', 'model = "echo"')})
    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="unused", max_retries=0)
    yield sdk
    await sdk.close()


async def test_sdk_responses_create_with_a_prompt(sdk):
    response = await sdk.responses.create(
        model="echo", prompt={"id": "pmpt_68d1c0ffee", "version": "1", "variables": {"ticket": "login fails"}}
    )
    echoed = json.loads(response.output_text)
    assert echoed["instructions"] == EXPECTED_BODY["instructions"]
    assert echoed["input"] == EXPECTED_BODY["input"]
    assert response.status == "completed" and response.object == "response"


async def test_sdk_responses_stream(sdk):
    stream = await sdk.responses.create(
        model="echo", input="and this?", prompt={"id": "agent", "variables": {"ticket": "t"}}, stream=True
    )
    kinds, text, final = [], "", None
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.completed":
            final = event.response
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert json.loads(text)["input"][-1] == {"role": "user", "content": "and this?"}
    assert final is not None and final.output_text == text


async def test_sdk_responses_stream_helper_accumulates(sdk):
    async with sdk.responses.stream(model="echo", input="hi") as stream:
        async for _event in stream:
            pass
        final = await stream.get_final_response()
    assert json.loads(final.output_text) == {"instructions": None, "input": "hi"}  # no prompt: as sent


# -- media variables -------------------------------------------------------------------------------

VISION = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "Describe images." },
  { role = "user", content = "Look at {{photo}} and compare it with {{other}}. Also read {{doc}}." },
]
[versions.variables]
photo = { type = "image" }
doc = { type = "file" }
"""
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
async def vision(make_gateway):
    return await make_gateway(prompts={"vision.toml": VISION})


async def test_media_variables_become_content_parts_on_chat(vision, upstream):
    variables = {
        "photo": "https://example.com/cat.png",
        "other": {"type": "input_image", "image_url": PNG, "detail": "low"},
        "doc": {"type": "input_file", "file_id": "file-abc"},
    }
    response = await post(vision, {"prompt_id": "vision", "prompt_variables": variables}, path="/v1/chat/completions")
    assert response.status == 200, await response.text()
    assert upstream.last["body"]["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Look at "},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "text", "text": " and compare it with "},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            {"type": "text", "text": ". Also read "},
            {"type": "file", "file": {"file_id": "file-abc"}},
            {"type": "text", "text": "."},
        ],
    }


async def test_media_variables_become_input_parts_on_responses(vision, upstream):
    variables = {
        "photo": {"type": "image_url", "image_url": {"url": PNG}},
        "other": {"type": "input_text", "text": "the old one"},
        "doc": "https://example.com/spec.pdf",
    }
    response = await post(vision, {"prompt": {"id": "vision", "variables": variables}})
    assert response.status == 200, await response.text()
    assert upstream.last["body"]["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look at "},
                {"type": "input_image", "image_url": PNG},
                {"type": "input_text", "text": " and compare it with the old one. Also read "},
                {"type": "input_file", "file_url": "https://example.com/spec.pdf"},
                {"type": "input_text", "text": "."},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("variables", "bad"),
    [
        ({"photo": "cat.png", "other": "x", "doc": "https://x/d.pdf"}, "photo"),
        ({"photo": PNG, "other": "x", "doc": {"type": "input_file"}}, "doc"),
        ({"photo": {"type": "input_file", "file_id": "f"}, "other": "x", "doc": "https://x/d.pdf"}, "photo"),
        ({"photo": PNG, "other": {"type": "input_image"}, "doc": "https://x/d.pdf"}, "other"),
    ],
)
async def test_a_media_value_of_the_wrong_shape_is_a_400_naming_it(vision, upstream, variables, bad):
    response = await post(vision, {"prompt_id": "vision", "prompt_variables": variables}, path="/v1/chat/completions")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_variables"
    assert [d["variable"] for d in error["details"]] == [bad]
    assert not upstream.requests


async def test_input_text_objects_are_strings(make_gateway, upstream):
    client = await make_gateway()
    variables = {"name": {"type": "input_text", "text": "Sam"}, "issue": {"type": "input_text", "text": "billing"}}
    response = await post(client, {"prompt_id": "support", "prompt_variables": variables}, path="/v1/chat/completions")
    assert response.status == 200, await response.text()
    assert upstream.last["body"]["messages"][1]["content"] == "I am Sam and my issue is billing."
