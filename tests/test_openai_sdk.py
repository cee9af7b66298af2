"""The official OpenAI Python SDK as the client, streaming and not."""

from __future__ import annotations

import json

import openai


def sdk(client) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="unused", max_retries=0)


async def test_sdk_non_streaming_with_extra_body(make_gateway, upstream):
    client = await make_gateway()
    async with sdk(client) as api:
        completion = await api.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"prompt_id": "support", "prompt_variables": {"name": "Sarah", "issue": "billing"}},
        )
    assert completion.choices[0].message.content == "hello"
    assert upstream.last["body"]["messages"][1] == {"role": "user", "content": "I am Sarah and my issue is billing."}
    assert "prompt_id" not in upstream.last["body"]


async def test_sdk_streaming_through_the_upstream(make_gateway, upstream):
    client = await make_gateway()
    upstream.behaviour = "stream"
    upstream.gate.set()
    async with sdk(client) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o-mini", messages=[], stream=True, extra_body={"prompt": {"id": "support", "version": 1}}
        )
        parts = [chunk.choices[0].delta.content async for chunk in stream]
    assert parts == ["part0 ", "part1 ", "part2 "]


async def test_sdk_against_the_echo_upstream(make_gateway):
    client = await make_gateway()
    async with sdk(client) as api:
        await _echo_round_trip(api)


async def _echo_round_trip(api: openai.AsyncOpenAI) -> None:
    completion = await api.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "x"}], extra_body={"prompt_id": "nomodel"}
    )
    assert json.loads(completion.choices[0].message.content)[0]["content"] == "Translate to French."
    assert completion.usage.total_tokens > 0
    stream = await api.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"prompt_id": "nomodel", "prompt_variables": {"language": "German"}},
    )
    text = ""
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert json.loads(text)[0]["content"] == "Translate to German."


async def test_sdk_sees_promptd_errors_as_api_errors(make_gateway):
    client = await make_gateway()
    async with sdk(client) as api:
        try:
            await api.chat.completions.create(model="echo", messages=[], extra_body={"prompt_id": "ghost"})
        except openai.NotFoundError as exc:
            assert exc.body["code"] == "prompt_not_found"
        else:
            raise AssertionError("expected a 404")
