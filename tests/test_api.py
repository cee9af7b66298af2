"""promptd's own endpoints: prompts, render, health."""

from __future__ import annotations

import orjson
import pytest


async def test_list_and_get_prompts(make_gateway):
    client = await make_gateway()
    listing = await (await client.get("/v1/prompts")).json()
    assert listing["generation"] == 1 and len(listing["hash"]) == 16
    support = next(p for p in listing["data"] if p["id"] == "support")
    assert support["versions"] == [1, 2, 3] and support["latest"] == 3
    assert support["environments"] == {"production": 2, "staging": 3}
    assert support["default_version"] == 2
    assert support["variables"]["issue"] == {"type": "string", "required": True, "enum": ["billing", "technical"]}
    assert support["variables"]["name"] == {"type": "any", "required": True}  # undeclared: any non-null value
    assert support["source"].endswith("prompts/support.toml")

    one = await (await client.get("/v1/prompts/support")).json()
    assert [v["version"] for v in one["versions"]] == [1, 2, 3]
    v2 = one["versions"][1]
    assert v2["model"] == "gpt-4o-mini" and v2["params"] == {"temperature": 0.2, "max_tokens": 512}
    assert v2["messages"][0] == {"role": "system", "content": "You help customers of {{company}}."}
    assert len(v2["hash"]) == 16

    missing = await client.get("/v1/prompts/ghost")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "prompt_not_found"


async def test_render_answers_the_body_without_sending(make_gateway, upstream):
    client = await make_gateway()
    response = await client.post(
        "/v1/prompts/support/render",
        json={
            "environment": "production",
            "variables": {"name": "A", "issue": "technical"},
            "messages": [{"role": "user", "content": "more"}],
            "temperature": 1,
        },
    )
    assert response.status == 200
    rendered = await response.json()
    assert rendered["upstream"] == "mock" and rendered["version"] == 2
    assert rendered["body"] == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You help customers of Acme."},
            {"role": "user", "content": "I am A and my issue is technical."},
            {"role": "user", "content": "more"},
        ],
        "max_tokens": 512,
        "temperature": 1,
    }
    assert upstream.requests == []


async def test_render_errors_match_chat_completions(make_gateway):
    client = await make_gateway()
    cases = [
        ("/v1/prompts/support/render", {"version": 8}, 404, "prompt_version_not_found"),
        ("/v1/prompts/support/render", {"environment": "qa"}, 404, "prompt_environment_not_found"),
        ("/v1/prompts/support/render", {"version": 2, "environment": "staging"}, 400, "invalid_prompt_fields"),
        ("/v1/prompts/support/render", {"variables": {}}, 400, "invalid_variables"),
        ("/v1/prompts/nomodel/render", {}, 400, "model_required"),
        ("/v1/prompts/nomodel/render", {"model": "llama"}, 400, "no_upstream_for_model"),
        ("/v1/prompts/ghost/render", {}, 404, "prompt_not_found"),
    ]
    for path, body, status, code in cases:
        response = await client.post(path, data=orjson.dumps(body))
        assert response.status == status, (body, await response.text())
        assert (await response.json())["error"]["code"] == code


async def test_health_and_readiness(make_gateway):
    client = await make_gateway()
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ready" and body["generation"] == 1 and body["prompts"] == 2
    assert body["last_reload_error"] is None


async def test_unknown_path_is_an_openai_shaped_404(make_gateway):
    client = await make_gateway()
    response = await client.get("/nowhere")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_catalog_has_model_updated_at_and_aliases(make_gateway):
    client = await make_gateway()
    listing = await (await client.get("/v1/prompts")).json()
    support = next(p for p in listing["data"] if p["id"] == "support")
    assert support["model"] == "gpt-4o-mini"  # of the default version (production = 2)
    assert support["aliases"] == []
    assert support["updated_at"].endswith("Z") and support["updated_at"][:2] == "20"
    nomodel = next(p for p in listing["data"] if p["id"] == "nomodel")
    assert nomodel["model"] is None


async def test_one_version_endpoint(make_gateway, upstream):
    client = await make_gateway()
    response = await client.get("/v1/prompts/support/versions/3")
    assert response.status == 200
    version = await response.json()
    assert version["version"] == 3 and version["model"] == "gpt-4o" and version["environments"] == ["staging"]
    assert version["messages"] == [{"role": "system", "content": "v3 {{company}}"}]
    missing = await client.get("/v1/prompts/support/versions/9")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "prompt_version_not_found"
    assert not upstream.requests


@pytest.mark.parametrize(
    "path", ["/v1/prompts/support/versions", "/v1/prompts/support/versions/1/x", "/v1/prompts/a/b/c", "/v1/prompts/"]
)
async def test_anything_else_under_v1_prompts_is_a_local_404(make_gateway, upstream, path):
    client = await make_gateway(api_key="env:UP", env={"UP": "sk-upstream"})
    for method in ("GET", "POST", "DELETE"):
        response = await client.request(method, path)
        assert response.status == 404, (method, path)
        assert (await response.json())["error"]["code"] == "not_found"
    assert not upstream.requests


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/chat/completions", "POST"),
        ("OPTIONS", "/chat/completions", "POST"),
        ("POST", "/v1/prompts", "GET, HEAD"),
        ("DELETE", "/v1/prompts/support", "GET, HEAD"),
        ("GET", "/v1/prompts/support/render", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_wrong_methods_get_405(make_gateway, upstream, method, path, allow):
    client = await make_gateway()
    response = await client.request(method, path)
    assert response.status == 405
    assert response.headers["Allow"] == allow
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    assert not upstream.requests
