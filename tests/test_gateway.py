"""The gateway end to end: the real app in front of a real local upstream."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from conftest import SUPPORT

VARS = {"name": "Sarah", "issue": "billing"}


async def post(client, body, path="/v1/chat/completions", **kwargs):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(
        path, data=data, headers={"Content-Type": "application/json", **kwargs.pop("headers", {})}, **kwargs
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt_id": "support", "prompt_variables": VARS},
        {"prompt_id": "support", "inputs": VARS},
        {"prompt": {"id": "support", "variables": VARS}},
        {"prompt": {"id": "support", "version": 2, "variables": VARS}},
        {"prompt_id": "support@2", "prompt_variables": VARS},
        {"prompt_id": "support", "prompt_version": 2, "prompt_variables": VARS},
        {"prompt_id": "support", "prompt_version": "2", "prompt_variables": VARS},
        {"prompt_id": "support", "environment": "production", "prompt_variables": VARS},
        {"prompt_id": "support", "prompt_environment": "production", "prompt_variables": VARS},
        {"prompt_id": "support", "prompt_label": "production", "prompt_variables": VARS},
        {"prompt_id": "support@production", "prompt_variables": VARS},
    ],
)
async def test_every_prompt_field_form_compiles_version_2(make_gateway, upstream, fields):
    client = await make_gateway()
    response = await post(client, {"messages": [{"role": "user", "content": "hi"}], **fields})
    assert response.status == 200, await response.text()
    sent = upstream.last["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "You help customers of Acme."},
        {"role": "user", "content": "I am Sarah and my issue is billing."},
        {"role": "user", "content": "hi"},
    ]
    assert response.headers["x-promptd-prompt-id"] == "support"
    assert response.headers["x-promptd-prompt-version"] == "2"
    assert len(response.headers["x-promptd-prompt-hash"]) == 16


async def test_exact_body_reaching_the_upstream(make_gateway, upstream):
    client = await make_gateway()
    body = {
        "model": "gpt-ignored",
        "prompt_id": "support",
        "prompt_variables": {**VARS, "unused": 1},
        "messages": [{"role": "user", "content": "{{name}} stays literal"}],
        "temperature": 0.9,
        "user": "u-1",
        "some_vendor_field": {"a": [1, 2]},
    }
    response = await post(client, body)
    assert response.status == 200
    assert upstream.last["path"] == "/v1/chat/completions"
    assert upstream.last["body"] == {
        "model": "gpt-4o-mini",  # the version's model wins
        "messages": [
            {"role": "system", "content": "You help customers of Acme."},
            {"role": "user", "content": "I am Sarah and my issue is billing."},
            {"role": "user", "content": "{{name}} stays literal"},
        ],
        "max_tokens": 512,  # version param as a default
        "temperature": 0.9,  # the request's parameter wins
        "user": "u-1",
        "some_vendor_field": {"a": [1, 2]},
    }
    assert await response.json() == {**(await response.json())}  # relayed JSON parses
    assert (await response.json())["choices"][0]["message"]["content"] == "hello"


async def test_request_model_used_when_the_version_has_none(make_gateway, upstream):
    client = await make_gateway()
    response = await post(client, {"prompt_id": "nomodel", "model": "gpt-4.1"})
    assert response.status == 200
    assert upstream.last["body"] == {
        "model": "gpt-4.1",
        "messages": [{"role": "system", "content": "Translate to French."}],
    }


async def test_request_without_prompt_fields_is_forwarded_byte_for_byte(make_gateway, upstream):
    client = await make_gateway()
    raw = b'{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"{{x}}"}],"zz":1.50}'
    response = await post(client, raw, path="/chat/completions")
    assert response.status == 200
    assert upstream.last["raw"] == raw
    assert "x-promptd-prompt-id" not in response.headers
    assert response.headers["x-request-id"]


async def test_headers_hop_by_hop_dropped_request_id_kept(make_gateway, upstream):
    client = await make_gateway()
    response = await post(
        client,
        {"model": "gpt-4o-mini", "messages": []},
        headers={"X-Request-Id": "req-42", "Proxy-Authorization": "x", "TE": "trailers", "X-Custom": "kept"},
    )
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["x-upstream"] == "yes"
    seen = {k.lower(): v for k, v in upstream.last["headers"].items()}
    assert seen["x-request-id"] == "req-42"
    assert [k.lower() for k, _ in upstream.last["header_list"]].count("x-request-id") == 1
    assert response.headers.getall("x-request-id") == ["req-42"]
    assert response.headers["x-upstream-request-id"] == "upstream-req-1"
    assert seen["x-custom"] == "kept"
    assert "proxy-authorization" not in seen and "te" not in seen


async def test_streaming_is_relayed_chunk_by_chunk(make_gateway, upstream):
    client = await make_gateway()
    upstream.behaviour = "gated_stream"
    response = await post(client, {"prompt_id": "support", "prompt_variables": VARS, "stream": True})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert b"part0" in first
    # The upstream has not sent its last chunk yet: it waits for us.
    assert not upstream.gate.is_set()
    upstream.gate.set()
    rest = await asyncio.wait_for(response.content.read(), 5)
    assert b"part2" in rest and rest.endswith(b"data: [DONE]\n\n")
    assert upstream.last["body"]["stream"] is True


async def test_upstream_dying_mid_stream_ends_with_an_error_event(make_gateway, upstream):
    client = await make_gateway()
    upstream.behaviour = "reset_stream"
    response = await post(client, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    body = await asyncio.wait_for(response.read(), 5)
    events = [e for e in body.split(b"\n\n") if e]
    assert b"part1" in events[-2]
    last = orjson.loads(events[-1].removeprefix(b"data: "))
    assert last["error"]["code"] == "upstream_unreachable"


async def test_client_disconnect_cancels_the_upstream_request(make_gateway, upstream):
    client = await make_gateway()
    upstream.behaviour = "gated_stream"
    response = await post(client, {"model": "gpt-4o-mini", "messages": [], "stream": True})
    await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    response.close()  # the client goes away mid-stream
    await asyncio.wait_for(upstream.closed.wait(), 5)


async def test_client_leaving_before_the_answer_starts_cancels_the_upstream_request(make_gateway, upstream):
    client = await make_gateway(read_timeout=10)
    upstream.behaviour = "slow"
    request = asyncio.ensure_future(post(client, {"model": "gpt-4o-mini", "messages": []}))
    await asyncio.sleep(0.3)
    request.cancel()  # the client gives up while the upstream has not answered yet
    await asyncio.gather(request, return_exceptions=True)
    await asyncio.wait_for(upstream.closed.wait(), 5)


async def test_upstream_errors_are_relayed_as_they_are(make_gateway, upstream):
    client = await make_gateway()
    upstream.behaviour = "error500"
    response = await post(client, {"model": "gpt-4o-mini", "messages": []})
    assert response.status == 500
    assert (await response.json())["error"]["message"] == "boom"
    upstream.behaviour = "error429"
    response = await post(client, {"model": "gpt-4o-mini", "messages": []})
    assert response.status == 429 and response.headers["retry-after"] == "1"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_upstream_refused_is_502(make_gateway):
    client = await make_gateway(upstream_url=f"http://127.0.0.1:{_closed_port()}/v1")
    response = await post(client, {"model": "gpt-4o-mini", "messages": []})
    assert response.status == 502
    error = (await response.json())["error"]
    assert error["code"] == "upstream_unreachable" and "mock" in error["message"]


async def test_upstream_timeout_is_504(make_gateway, upstream):
    client = await make_gateway(read_timeout=0.3)
    upstream.behaviour = "slow"
    response = await post(client, {"model": "gpt-4o-mini", "messages": []})
    assert response.status == 504
    assert (await response.json())["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        ({"prompt_id": 5}, 400, "invalid_prompt_fields"),
        ({"prompt_variables": {}}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_variables": {}, "inputs": {}}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "support@2", "prompt_version": 2}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_version": 2, "environment": "staging"}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt": {"id": "support"}}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_version": "two"}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "support", "prompt_variables": [1]}, 400, "invalid_prompt_fields"),
        ({"prompt": "hello"}, 400, "invalid_prompt_fields"),
        ({"prompt_id": "nomodel"}, 400, "model_required"),
        ({"messages": []}, 400, "model_required"),
        ({"model": "claude-3", "messages": []}, 400, "no_upstream_for_model"),
        ({"prompt_id": "nope"}, 404, "prompt_not_found"),
        ({"prompt_id": "support", "prompt_version": 9}, 404, "prompt_version_not_found"),
        ({"prompt_id": "support@qa"}, 404, "prompt_environment_not_found"),
    ],
)
async def test_error_codes(make_gateway, upstream, body, status, code):
    client = await make_gateway()
    response = await post(client, body)
    assert response.status == status
    payload = await response.json()
    assert payload["error"]["code"] == code
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["message"]
    assert upstream.requests == []


async def test_not_found_messages_name_what_exists(make_gateway):
    client = await make_gateway()
    error = (await (await post(client, {"prompt_id": "nope"})).json())["error"]
    assert "nomodel, support" in error["message"]
    error = (await (await post(client, {"prompt_id": "support", "prompt_version": 9})).json())["error"]
    assert "versions: 1, 2, 3" in error["message"]
    error = (await (await post(client, {"prompt_id": "support", "environment": "qa"})).json())["error"]
    assert "production, staging" in error["message"]


async def test_invalid_variables_lists_every_problem(make_gateway, upstream):
    client = await make_gateway()
    response = await post(client, {"prompt_id": "support", "prompt_variables": {"issue": "shipping", "company": 3}})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_variables"
    assert sorted(error["details"], key=lambda d: d["variable"]) == [
        {"variable": "company", "problem": "wrong_type", "expected": "string"},
        {"variable": "issue", "problem": "not_in_enum", "expected": ["billing", "technical"]},
        {"variable": "name", "problem": "missing", "expected": "any"},
    ]
    assert upstream.requests == []


async def test_body_over_the_limit_is_413(make_gateway, upstream):
    client = await make_gateway(server="max_body_bytes = 1000")
    response = await post(client, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 2000}]})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"

    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    response = await client.post("/v1/chat/completions", data=chunks())  # chunked: no Content-Length
    assert response.status == 413
    assert upstream.requests == []


async def test_api_key_reference_is_injected_and_client_key_not_forwarded(make_gateway, upstream):
    client = await make_gateway(
        api_key="env:UPSTREAM_KEY",
        auth='api_keys = "env:PROMPTD_KEYS"',
        env={"UPSTREAM_KEY": "sk-upstream-secret", "PROMPTD_KEYS": "pk-one, pk-two"},
    )
    response = await post(client, {"model": "gpt-4o-mini", "messages": []}, headers={"Authorization": "Bearer pk-two"})
    assert response.status == 200
    assert upstream.last["headers"]["Authorization"] == "Bearer sk-upstream-secret"


async def test_client_authorization_passes_through_when_no_upstream_key(make_gateway, upstream):
    client = await make_gateway(api_key="env:UNSET_KEY")
    await post(client, {"model": "gpt-4o-mini", "messages": []}, headers={"Authorization": "Bearer sk-client"})
    assert upstream.last["headers"]["Authorization"] == "Bearer sk-client"


async def test_auth_required_everywhere_but_health_and_metrics(make_gateway, upstream):
    client = await make_gateway(auth='api_keys = "env:PROMPTD_KEYS"', env={"PROMPTD_KEYS": "pk-one"})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic pk-one"}):
        response = await post(client, {"model": "gpt-4o-mini", "messages": []}, headers=headers)
        assert response.status == 401
        error = (await response.json())["error"]
        assert error["code"] == "unauthorized" and "wrong" not in error["message"]
    for path in ("/v1/prompts", "/readyz", "/v1/models"):
        assert (await client.get(path)).status == 401
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/metrics")).status == 200
    assert upstream.requests == []
    ok = await client.get("/v1/prompts", headers={"Authorization": "Bearer pk-one"})
    assert ok.status == 200


async def test_other_v1_paths_are_proxied_to_the_model_or_default_upstream(make_gateway, upstream):
    client = await make_gateway()
    raw = b'{"model": "text-embedding-3-small", "input": "hi"}'
    response = await post(client, raw, path="/v1/embeddings")
    assert response.status == 200
    assert upstream.last["path"] == "/v1/embeddings" and upstream.last["raw"] == raw
    response = await client.get("/v1/models?limit=2")
    assert response.status == 200
    assert upstream.last["method"] == "GET" and upstream.last["path"] == "/v1/models?limit=2"
    response = await client.get("/v1/chat/completions/chatcmpl-1")  # a stored completion: proxied
    assert upstream.last["method"] == "GET" and upstream.last["path"] == "/v1/chat/completions/chatcmpl-1"


async def test_echo_upstream_streaming_and_not(make_gateway, upstream):
    client = await make_gateway()
    response = await post(client, {"model": "echo", "prompt_id": "nomodel"})
    answer = await response.json()
    assert answer["object"] == "chat.completion"
    assert orjson.loads(answer["choices"][0]["message"]["content"]) == [
        {"role": "system", "content": "Translate to French."}
    ]
    response = await post(
        client,
        {
            "model": "echo",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = [e.removeprefix(b"data: ") for e in (await response.read()).split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert orjson.loads(text) == [{"role": "user", "content": "hi"}]
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert upstream.requests == []


HISTORY_PROMPT = """
[[versions]]
version = 1
model = "gpt-4o-mini"
messages = [
  { role = "system", content = "Be brief, {{name}}." },
  { placeholder = "history" },
  { role = "user", content = "Now summarise." },
]
"""


def _conversation(size: int) -> list[dict]:
    """A conversation of about `size` bytes, with text that needs escaping."""
    turn = 'He said "hi" \\ then {{x}} and ünïcødé. ' * 20
    return [{"role": "user" if i % 2 else "assistant", "content": f"{i}: {turn}"} for i in range(size // 900 + 1)]


@pytest.mark.parametrize("size", [1_000, 40_000, 400_000])
async def test_large_conversations_compile_to_the_same_body_as_small_ones(make_gateway, upstream, size):
    """Bodies of 16 KB and more keep `messages` as raw JSON and splice it in; what
    reaches the upstream is exactly what decoding it whole would give."""
    client = await make_gateway(prompts={"support.toml": SUPPORT, "hist.toml": HISTORY_PROMPT})
    conversation = _conversation(size)
    body = {"messages": conversation, "prompt_id": "support", "prompt_variables": VARS, "temperature": 0.5}
    response = await post(client, body)
    assert response.status == 200, await response.text()
    assert upstream.last["body"] == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You help customers of Acme."},
            {"role": "user", "content": "I am Sarah and my issue is billing."},
            *conversation,
        ],
        "max_tokens": 512,
        "temperature": 0.5,
    }
    # At the history placeholder.
    response = await post(client, {"prompt_id": "hist", "prompt_variables": {"name": "Ann"}, "messages": conversation})
    assert response.status == 200
    assert upstream.last["body"]["messages"] == [
        {"role": "system", "content": "Be brief, Ann."},
        *conversation,
        {"role": "user", "content": "Now summarise."},
    ]
    # An empty conversation, and `messages: null`, leave the prompt's messages alone.
    padding = "x" * size
    for messages in ([], None):
        response = await post(
            client,
            {
                "prompt_id": "hist",
                "prompt_variables": {"name": "Ann"},
                "messages": messages,
                "metadata": {"pad": padding},
            },
        )
        assert response.status == 200
        assert upstream.last["body"]["messages"] == [
            {"role": "system", "content": "Be brief, Ann."},
            {"role": "user", "content": "Now summarise."},
        ]


async def test_a_large_body_with_messages_that_are_not_an_array_is_refused(make_gateway, upstream):
    client = await make_gateway()
    body = {"prompt_id": "support", "prompt_variables": VARS, "messages": {"role": "user", "content": "x" * 40_000}}
    response = await post(client, body)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_messages"
    broken = b'{"prompt_id": "support", "messages": [' + b'{"role": "user", "content": "x"},' * 2000 + b"}"
    response = await post(client, broken)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"
    assert upstream.requests == []
