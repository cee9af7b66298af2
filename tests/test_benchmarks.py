"""The bundled benchmarks at a tiny scale, so they cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_suite_runs_every_scenario_without_errors(tmp_path):
    result = run("benchmarks", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    expected = {
        "direct",
        "baseline",
        "passthrough",
        "small_prompt",
        "large_prompt",
        "baseline_stream",
        "stream",
        "small_prompt_many",
        "small_prompt_workers2",
        "small_prompt_responses",
        "stream_responses",
        "small_prompt_rollout",
        "console_script",
        *(f"{kind}_{size}" for kind in ("baseline", "passthrough", "compile") for size in ("1kb", "100kb", "1mb")),
    }
    assert set(report["scenarios"]) == expected
    for name, by_concurrency in report["scenarios"].items():
        for outcome in by_concurrency.values():
            assert outcome["requests"] > 0 and outcome["errors"] == 0, (name, outcome)
            assert outcome["cpu_us_per_request"] is not None
    assert report["scenarios"]["stream"]["4"]["ttfb_ms"]["p50"] > 0
    assert report["startup"]["prompts"] == 202
    assert report["reload"]["full"]["errors"] == 0 and report["reload"]["one_file"]["files_changed"] == 1
    assert "| small_prompt | 4 |" in (tmp_path / "latest.md").read_text()
    assert report["scenarios"]["compile_1mb"]["4"]["cpu_ratio_vs_baseline"] > 0  # against baseline_1mb
    assert report["scenarios"]["baseline_1mb"]["4"]["passes"] == 1  # interleaved passes: 3 in a full run
    assert set(report["paired"]) == {
        "control: a second process vs the first (same config)",
        "10,000 prompts vs 12 (small prompt)",
        "--workers 2 vs 1 (small prompt)",
        "the forwarder: 2 processes vs 1",
        "responses vs chat completions (small prompt)",
        "rollout vs the same request without one",
        "rollout + usage-bearing answer vs neither",
        "1 MB body: passthrough vs the forwarder",
        "1 MB body: compile vs the forwarder",
    }
    assert all(r["ratio"] > 0 for r in report["paired"].values())
    # Where the CPU goes besides promptd's code: event-loop sleeps, and with --workers where the connections landed.
    workers = report["scenarios"]["small_prompt_workers2"]["4"]
    assert workers["sleeps_per_request"] >= 0 and workers["busy_processes"] in (1, 2)
    assert report["scenarios"]["small_prompt"]["4"]["busy_processes"] == 1
    split = report["paired"]["--workers 2 vs 1 (small prompt)"]
    assert split["rounds_one_worker"] + split["rounds_spread"] == split["rounds"]
    control = report["paired"]["the forwarder: 2 processes vs 1"]  # the control of the --workers pair
    assert control["rounds_one_worker"] + control["rounds_spread"] == control["rounds"]
    assert "ratio_spread" not in report["paired"]["10,000 prompts vs 12 (small prompt)"]


def test_compile_micro_benchmark():
    result = run("benchmarks.compile_bench", "--seconds", "0.05")
    assert result.returncode == 0, result.stderr
    assert "small" in result.stdout and "large" in result.stdout and "µs per compile" in result.stdout


def test_reload_latency_benchmark():
    result = run("benchmarks.reload_latency", "--edits", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 edits: median")


def test_compare_url_includes_another_gateway(tmp_path):
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    other = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.mock_upstream", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        result = run(
            "benchmarks",
            "--quick",
            "--only",
            "baseline",
            "compare",
            "--out",
            str(tmp_path),
            "--compare-url",
            f"http://127.0.0.1:{port}/v1/chat/completions",
            "--compare-pid",
            str(other.pid),
        )
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads((tmp_path / "latest.json").read_text())
        compare = report["scenarios"]["compare"]["4"]
        assert compare["requests"] > 0 and compare["errors"] == 0
        # /proc counts CPU in 10 ms ticks: a quick run of an idle mock may read 0.
        assert compare["cpu_us_per_request"] >= 0 and "cpu_ratio_vs_baseline" in compare
    finally:
        other.terminate()
        other.wait(timeout=10)


def test_instruction_counts_under_callgrind():
    """`python -m benchmarks.instructions`: deterministic counts (valgrind is on the machine)."""
    result = run("benchmarks.instructions", "baseline", "passthrough", "--requests", "40")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ")}
    baseline, passthrough = float(rows["baseline"].split("|")[2]), float(rows["passthrough"].split("|")[2])
    assert baseline > 50 and passthrough > 50  # thousands of instructions per request
    assert rows["passthrough"].split("|")[3].strip()  # a ratio against the baseline
