"""Metrics after real requests, and the access log."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


async def test_metrics_after_real_requests(make_gateway, upstream):
    client = await make_gateway()
    good = {"prompt_id": "support", "prompt_variables": {"name": "a", "issue": "billing"}}
    for _ in range(3):
        assert (await client.post("/v1/chat/completions", json=good)).status == 200
    await client.post("/v1/chat/completions", json={"prompt_id": "support"})
    await client.post("/v1/chat/completions", json={"prompt_id": "ghost-123"})
    await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
    upstream.behaviour = "error500"
    await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})

    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    found = samples(await response.text())
    assert (
        value(
            found,
            "promptd_requests_total",
            endpoint="chat_completions",
            prompt_id="support",
            prompt_version="2",
            status="200",
        )
        == 3
    )
    assert (
        value(
            found,
            "promptd_requests_total",
            endpoint="chat_completions",
            prompt_id="support",
            prompt_version="none",
            status="400",
        )
        == 1
    )
    assert (
        value(
            found,
            "promptd_requests_total",
            endpoint="chat_completions",
            prompt_id="unknown",
            prompt_version="none",
            status="404",
        )
        == 1
    )
    assert (
        value(
            found,
            "promptd_requests_total",
            endpoint="chat_completions",
            prompt_id="none",
            prompt_version="none",
            status="200",
        )
        == 1
    )
    assert (
        value(
            found,
            "promptd_requests_total",
            endpoint="chat_completions",
            prompt_id="none",
            prompt_version="none",
            status="500",
        )
        == 1
    )
    assert value(found, "promptd_request_duration_seconds_count", endpoint="chat_completions", prompt_id="support") == 4
    assert value(found, "promptd_overhead_seconds_count", endpoint="chat_completions") == 7
    assert value(found, "promptd_overhead_seconds_bucket", endpoint="chat_completions", le="5e-05") is not None
    assert value(found, "promptd_compile_duration_seconds_count") == 3
    assert value(found, "promptd_upstream_ttfb_seconds_count", upstream="mock") == 5
    assert value(found, "promptd_upstream_errors_total", upstream="mock", kind="status_5xx") == 1
    assert value(found, "promptd_prompt_errors_total", prompt_id="support", code="invalid_variables") == 1
    assert value(found, "promptd_prompt_errors_total", prompt_id="unknown", code="prompt_not_found") == 1
    assert value(found, "promptd_config_generation") == 1
    assert value(found, "promptd_prompts_loaded") == 2
    assert value(found, "promptd_inflight_requests") == 1  # the scrape itself
    assert value(found, "process_cpu_seconds_total") is not None
    assert not any("ghost" in str(key) for key in found)  # unknown ids never become labels


async def test_upstream_error_kinds(make_gateway, upstream):
    client = await make_gateway(upstream_url="http://127.0.0.1:9/v1")
    await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
    found = samples(await (await client.get("/metrics")).text())
    assert value(found, "promptd_upstream_errors_total", upstream="mock", kind="connect") == 1


async def test_access_log_fields_and_no_secrets(make_gateway, upstream):
    client = await make_gateway(
        api_key="env:UPSTREAM_KEY",
        auth='api_keys = "env:PROMPTD_KEYS"',
        env={"UPSTREAM_KEY": "sk-planted-upstream-secret", "PROMPTD_KEYS": "pk-planted-client-secret"},
    )
    headers = {"Authorization": "Bearer pk-planted-client-secret", "X-Request-Id": "rid-7"}
    body = {
        "prompt_id": "support",
        "prompt_variables": {"name": "PLANTED-NAME", "issue": "billing"},
        "messages": [{"role": "user", "content": "PLANTED-CONTENT"}],
    }
    assert (await client.post("/v1/chat/completions", json=body, headers=headers)).status == 200
    await client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer pk-wrong-planted"})
    await client.get("/healthz")
    client.server.app.state.access_log.flush()
    text = client.access_log.data.decode()
    for secret in ("sk-planted", "pk-planted", "PLANTED-NAME", "PLANTED-CONTENT"):
        assert secret not in text
    entry = client.access_log.lines()[0]
    assert entry["request_id"] == "rid-7" and entry["status"] == 200
    assert entry["prompt_id"] == "support" and entry["prompt_version"] == 2 and entry["environment"] == "production"
    assert entry["upstream"] == "mock" and entry["model"] == "gpt-4o-mini" and entry["method"] == "POST"
    assert entry["path"] == "/v1/chat/completions" and entry["bytes_out"] > 0
    assert entry["duration_ms"] >= entry["upstream_ttfb_ms"] > 0
    assert {"ts", "level", "logger", "overhead_ms"} <= set(entry)
    assert client.access_log.lines()[1]["status"] == 401


def test_worker_snapshots_sum_counts_and_only_live_in_flight(tmp_path, monkeypatch):
    """With several workers each publishes its own counts; a scrape sums them all,
    a dead worker's counts included (counters never go back) but not its in-flight."""
    import subprocess

    from promptd.ops.metrics import LoopMetrics, Snapshots

    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = LoopMetrics()
    gone.request_done("chat_completions", "p", "1", 200, 0.01, 0.001)
    gone.started()  # it died with a request in flight
    (tmp_path / f"requests-{dead.pid}.json").write_bytes(__import__("orjson").dumps(gone.snapshot()))

    mine = LoopMetrics()
    mine.request_done("chat_completions", "p", "1", 200, 0.02, 0.002)
    mine.request_done("chat_completions", "p", "2", 400, 0.03, 0.003)
    mine.count_tokens("p", "1", (5, 7, 0))
    mine.started()
    merged = Snapshots(tmp_path, mine).merged()
    assert merged.requests == {("chat_completions", "p", "1", "200"): 2, ("chat_completions", "p", "2", "400"): 1}
    assert merged.tokens == {("p", "1"): [5, 7, 0]}  # prompt, completion, cached
    assert sum(merged.duration[("chat_completions", "p")].counts) == 3
    assert merged.inflight == 1  # only the live worker's
