"""Weighted rollouts (README "Rollouts"): the sticky bucket computed here
independently, the distribution, stickiness for each key source, widening,
bypass, and per-version metrics after real requests."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from conftest import write_config

from promptd.errors import ConfigError
from promptd.prompts.promptset import PromptLoader

ROOT = Path(__file__).parent.parent


def rollout_prompt(weights: str, prompt_id: str = "canary") -> str:
    versions = "".join(
        f'[[versions]]\nversion = {n}\nmodel = "gpt-4o-mini"\nmessages = [{{ role = "system", content = "v{n}" }}]\n'
        for n in (1, 2, 3)
    )
    return (
        f'id = "{prompt_id}"\naliases = ["{prompt_id}-alias"]\n[environments]\nproduction = {weights}\nstaging = 1\n'
        + versions
    )


def expected_version(key: str, weights: dict[int, int], prompt_id: str = "canary", environment: str = "production"):
    """DESIGN 3.6, written out again: first 8 bytes of SHA-256 / 2**64, walked by cumulative weight."""
    digest = hashlib.sha256(f"{prompt_id}\0{environment}\0{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(weights.values())
    running = 0
    for version in sorted(weights):
        running += weights[version]
        if point < running / total:
            return version
    return max(weights)


async def post(client, body, headers=None, path="/v1/chat/completions"):
    return await client.post(path, data=orjson.dumps(body), headers=headers or {})


@pytest.fixture
async def canary(make_gateway):
    return await make_gateway(prompts={"canary.toml": rollout_prompt('{ "1" = 90, "2" = 10, "3" = 0 }')})


async def test_the_bucket_is_the_documented_one(canary, upstream):
    for index in range(200):
        key = f"user-{index}"
        response = await post(canary, {"prompt_id": "canary"}, {"x-promptd-sticky-key": key})
        version = expected_version(key, {1: 90, 2: 10, 3: 0})
        assert response.headers["x-promptd-prompt-version"] == str(version)
        assert response.headers["x-promptd-rollout"] == f"production {version} sticky"
        assert upstream.last["body"]["messages"][0]["content"] == f"v{version}"


async def test_the_distribution_follows_the_weights(canary, upstream):
    counts = {1: 0, 2: 0, 3: 0}
    for index in range(2000):
        response = await post(canary, {"prompt_id": "canary", "user": f"u{index}"})
        counts[int(response.headers["x-promptd-prompt-version"])] += 1
    assert abs(counts[2] / 2000 - 0.10) <= 0.03 and counts[3] == 0


async def test_without_a_key_the_choice_is_random_with_the_same_weights(canary, upstream):
    counts = {1: 0, 2: 0, 3: 0}
    for _ in range(2000):
        response = await post(canary, {"prompt_id": "canary"})
        assert response.headers["x-promptd-rollout"].endswith(" random")
        counts[int(response.headers["x-promptd-prompt-version"])] += 1
    assert abs(counts[2] / 2000 - 0.10) <= 0.03 and counts[3] == 0


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({}, {"x-promptd-sticky-key": "k-{}"}),
        ({"safety_identifier": "k-{}", "user": "other"}, {}),
        ({"user": "k-{}"}, {}),
        ({"prompt_cache_key": "k-{}"}, {}),
        ({"metadata": {"user_id": "k-{}"}}, {}),
    ],
)
async def test_each_key_source_is_sticky(canary, upstream, fields, headers):
    for index in range(30):
        key = f"k-{index}"
        body = {"prompt_id": "canary", **orjson.loads(orjson.dumps(fields).replace(b"k-{}", f"k-{index}".encode()))}
        hdrs = {name: value.format(index) for name, value in headers.items()}
        seen = {(await post(canary, body, hdrs)).headers["x-promptd-prompt-version"] for _ in range(3)}
        assert seen == {str(expected_version(key, {1: 90, 2: 10, 3: 0}))}


def test_widening_only_moves_keys_into_the_new_version(tmp_path):
    keys = [str(uuid.UUID(int=i)) for i in range(1000)]
    before = {key: expected_version(key, {1: 95, 2: 5}) for key in keys}
    after = {key: expected_version(key, {1: 50, 2: 50}) for key in keys}
    assert all(after[key] == 2 for key in keys if before[key] == 2)
    config = write_config(tmp_path, {"canary.toml": rollout_prompt('{ "1" = 50, "2" = 50 }')})
    prompts = PromptLoader([config / "prompts"]).build()
    rollout = prompts.prompts["canary"].targets["production"]
    from promptd.compiler.resolve import bucket

    assert all(rollout.pick(bucket("canary", "production", key)) == after[key] for key in keys)


def test_remembered_keys_keep_their_documented_version(tmp_path):
    """A rollout remembers the versions of its last sticky keys: past its limit
    (the memory starts over) and for keys seen again, every answer is still DESIGN 3.6's."""
    from promptd.prompts.files import STICKY_CACHE

    config = write_config(tmp_path, {"canary.toml": rollout_prompt('{ "1" = 30, "2" = 70 }')})
    rollout = PromptLoader([config / "prompts"]).build().prompts["canary"].targets["production"]
    keys = [f"user-{i}" for i in range(STICKY_CACHE + 500)]
    for key in keys + keys[:1000] + keys[-1000:]:
        assert rollout.sticky_pick(key) == expected_version(key, {1: 30, 2: 70}), key


async def test_an_explicit_version_or_plain_environment_bypasses_the_rollout(canary, upstream):
    for body, version in [
        ({"prompt_id": "canary", "prompt_version": 3}, "3"),
        ({"prompt_id": "canary@2"}, "2"),
        ({"prompt_id": "canary", "environment": "staging"}, "1"),
    ]:
        response = await post(canary, {**body, "user": "someone"})
        assert response.headers["x-promptd-prompt-version"] == version
        assert "x-promptd-rollout" not in response.headers


async def test_an_alias_uses_the_prompts_own_id_for_the_bucket(canary, upstream):
    response = await post(canary, {"prompt_id": "canary-alias", "user": "k-7"})
    assert response.headers["x-promptd-prompt-version"] == str(expected_version("k-7", {1: 90, 2: 10, 3: 0}))


async def test_the_responses_surface_and_render(canary, upstream):
    response = await post(canary, {"prompt": {"id": "canary"}, "user": "k-3"}, path="/v1/responses")
    version = expected_version("k-3", {1: 90, 2: 10, 3: 0})
    assert response.headers["x-promptd-rollout"] == f"production {version} sticky"
    rendered = await (await post(canary, {"sticky_key": "k-3"}, path="/v1/prompts/canary/render")).json()
    assert rendered["version"] == version and rendered["rollout"] == f"production {version} sticky"
    listing = await (await canary.get("/v1/prompts")).json()
    assert listing["data"][0]["environments"] == {"production": {"1": 90, "2": 10, "3": 0}, "staging": 1}


def test_cli_render_sticky_key(tmp_path):
    config = write_config(tmp_path, {"canary.toml": rollout_prompt('{ "1" = 90, "2" = 10 }')})
    result = subprocess.run(
        [sys.executable, "-m", "promptd", "render", "canary", str(config), "--sticky-key", "k-3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    version = expected_version("k-3", {1: 90, 2: 10})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"][0]["content"] == f"v{version}"
    assert f"rollout: production {version} sticky" in result.stderr


@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        ('{ "1" = 50, "7" = 50 }', 'environments.production.7: "7" is not a version of this prompt'),
        ('{ "1" = -1, "2" = 5 }', "environments.production.1: weight -1 is negative"),
        ('{ "1" = 0, "2" = 0 }', "environments.production: a rollout needs at least one positive weight"),
        ("{}", "environments.production: a rollout needs at least one version with a weight"),
    ],
)
def test_bad_rollouts_are_load_errors(tmp_path, weights, problem):
    config = write_config(tmp_path, {"canary.toml": rollout_prompt(weights)})
    with pytest.raises(ConfigError) as info:
        PromptLoader([config / "prompts"]).build()
    assert any(problem in line for line in info.value.problems), info.value.problems


async def test_requests_and_tokens_are_counted_per_version(make_gateway, upstream):
    client = await make_gateway(prompts={"canary.toml": rollout_prompt('{ "1" = 50, "2" = 50 }')})
    versions = []
    for index in range(20):
        response = await post(client, {"prompt_id": "canary", "user": f"u{index}"})
        versions.append(response.headers["x-promptd-prompt-version"])
    upstream.behaviour = "stream_usage"
    response = await post(
        client, {"prompt_id": "canary", "prompt_version": 2, "stream": True, "stream_options": {"include_usage": True}}
    )
    await response.read()
    assert upstream.last["body"]["stream_options"] == {"include_usage": True}
    metrics = await (await client.get("/metrics")).text()
    for version in ("1", "2"):
        count = versions.count(version)
        line = f'promptd_requests_total{{endpoint="chat_completions",prompt_id="canary",prompt_version="{version}",status="200"}}'
        assert f"{line} {float(count + (version == '2'))}" in metrics
        prompt_tokens = count * 1 + (7 if version == "2" else 0)
        assert (
            f'promptd_tokens_total{{kind="prompt",prompt_id="canary",prompt_version="{version}"}} {float(prompt_tokens)}'
            in metrics
        )
    assert 'promptd_tokens_total{kind="cached",prompt_id="canary",prompt_version="2"} 3.0' in metrics


async def test_metric_labels_stay_bounded(make_gateway, upstream):
    client = await make_gateway(prompts={"canary.toml": rollout_prompt('{ "1" = 50, "2" = 50 }')})
    for index in range(50):
        await post(client, {"prompt_id": f"random-{uuid.uuid4()}", "prompt_version": index + 1})
    metrics = await (await client.get("/metrics")).text()
    assert "random-" not in metrics
    assert 'prompt_id="unknown",prompt_version="none",status="404"} 50.0' in metrics


async def test_responses_usage_is_counted_plain_and_streamed(make_gateway, upstream):
    prompt = rollout_prompt('{ "1" = 50, "2" = 50 }').replace('model = "gpt-4o-mini"', 'model = "echo"')
    client = await make_gateway(prompts={"canary.toml": prompt})
    plain = await (await post(client, {"prompt": {"id": "canary", "version": "1"}}, path="/v1/responses")).json()
    streamed = await post(client, {"prompt": {"id": "canary", "version": "1"}, "stream": True}, path="/v1/responses")
    await streamed.read()
    metrics = await (await client.get("/metrics")).text()
    expected = 2 * plain["usage"]["input_tokens"]
    assert f'promptd_tokens_total{{kind="prompt",prompt_id="canary",prompt_version="1"}} {float(expected)}' in metrics
