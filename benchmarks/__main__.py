"""promptd's load tests, in one command.

    python -m benchmarks                      # the full suite, about 12 minutes
    python -m benchmarks --quick              # a few hundred requests per scenario (CI)
    python -m benchmarks --compare-url http://127.0.0.1:4000/v1/chat/completions

Starts the mock upstream, the baseline forwarder and promptd on 127.0.0.1,
runs every scenario for a fixed time at each concurrency, and writes a table
(CPU per request is the figure to read: it is steady on a shared machine)
to benchmarks/results/latest.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiohttp

from benchmarks import workload
from benchmarks.loadgen import LoadResult, builtin_load, have_wrk, percentiles, wrk_load

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process of the benchmark; all of them listen on 127.0.0.1 only."""

    def __init__(self, name: str, args: list[str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        self.started = time.perf_counter()
        self.ready_after = 0.0
        several = next((flag for flag in ("--workers", "--processes") if flag in args), None)
        self.workers = int(args[args.index(several) + 1]) if several else 1

    @property
    def main_pid(self) -> int | None:
        return self.process.pid

    def pids(self) -> list[int]:
        """The process and its children (promptd's workers and builder)."""
        pid = self.main_pid
        if pid is None:
            return []
        pids = [pid]
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def usage(self) -> dict[int, float]:
        """CPU seconds so far of each of the server's processes."""
        return self._each(workload.cpu_seconds)

    def sleeps(self) -> int:
        return sum(self._each(workload.sleeps).values())

    def _each(self, read: Callable[[int], T]) -> dict[int, T]:
        """`read` of each of the server's processes still running."""
        out = {}
        for pid in self.pids():
            try:
                out[pid] = read(pid)
            except OSError:
                pass
        return out

    def rss_mb(self) -> float:
        return round(sum(workload.peak_rss_mb(pid) for pid in self.pids()), 1)

    async def wait_ready(self, path: str = "/healthz", timeout: float = 60) -> None:
        deadline = time.perf_counter() + timeout
        async with aiohttp.ClientSession() as session:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"{self.name} exited with {self.process.returncode}")
                try:
                    async with session.get(self.url + path) as response:
                        if response.status < 500:
                            self.ready_after = time.perf_counter() - self.started
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.02)
        raise SystemExit(f"{self.name} did not start in {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class OtherGateway(Server):
    """A gateway started by someone else (`--compare-url`); its CPU and RSS are
    read only when `--compare-pid` names its process."""

    def __init__(self, pid: int | None) -> None:
        self.name = "compare"
        self.pid = pid
        self.workers = 1

    @property
    def main_pid(self) -> int | None:
        return self.pid


async def measure(
    server: Server,
    url: str,
    body: bytes | None,
    concurrency: int,
    args: argparse.Namespace,
    stream: bool = False,
    duration: float | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    """`body` None: GET requests. `headers`: sent with every request."""
    if stream and body is not None:
        body = body[:-1] + b',"stream":true}'
    # A short warm-up, so connection setup and first-call costs are not counted.
    await builtin_load(url, body, min(concurrency, 4), 0.3, max_requests=50, stream=stream, extra_headers=headers)
    usage_before, sleeps_before = server.usage(), server.sleeps()
    seconds = duration or args.duration
    if have_wrk() and not args.no_wrk and not stream:
        result: LoadResult = await asyncio.to_thread(wrk_load, url, body, concurrency, seconds, headers)
    else:
        result = await builtin_load(
            url, body, concurrency, seconds, max_requests=args.max_requests, stream=stream, extra_headers=headers
        )
    usage = {pid: cpu - usage_before.get(pid, 0.0) for pid, cpu in server.usage().items()}
    cpu = sum(usage.values()) if usage else None
    served = result.requests or 1
    return {
        "tool": result.tool,
        "requests": result.requests,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "latency_ms": result.latencies_ms,
        "ttfb_ms": result.ttfb_ms,
        "cpu_us_per_request": round(cpu / result.requests * 1e6, 1) if result.requests and cpu is not None else None,
        "peak_rss_mb": server.rss_mb() if server.pids() else None,
        # Event-loop sleeps per request: a server that never runs out of work never sleeps.
        "sleeps_per_request": round((server.sleeps() - sleeps_before) / served, 2) if usage else None,
        # The processes that did at least a tenth of the work (with --workers: where the connections landed).
        "busy_processes": sum(used >= 0.1 * cpu for used in usage.values()) if cpu else None,
    }


def promptd_args(config: Path, port: int, *extra: str) -> list[str]:
    return ["-m", "promptd", "serve", str(config), "--port", str(port), *extra]


async def many_prompts(tmp: Path, mock: Server, args: argparse.Namespace, report: dict) -> Server:
    """Start-up time and RSS with N prompts of 3 versions, the reload time of that
    set, and request latency while it rebuilds."""
    config = workload.write_config(tmp / "many", mock.port, many=args.many, watch=False)
    server = Server("promptd-many", promptd_args(config, free_port()), 0, tmp / "promptd-many.log")
    server.port = int(server.process.args[-1])  # type: ignore[index]
    server.url = f"http://127.0.0.1:{server.port}"
    await server.wait_ready()
    report["startup"] = {
        "prompts": args.many + 2,
        "versions": args.many * 3 + 2,
        "ready_after_s": round(server.ready_after, 3),
        "rss_mb": server.rss_mb(),
    }
    body = workload.body_bytes(workload.SMALL_BODY)
    url = server.url + "/v1/chat/completions"
    generated = sorted((config / "prompts" / "generated").iterdir())
    # A full rebuild (every file changed: nothing cached), then a one-file edit with
    # the same 10,000 loaded, each forced with SIGHUP while a steady load (4 clients,
    # 5 ms apart: a sidecar's load, well below saturation) keeps coming.
    report["reload"] = {
        "full": await _reload_under_load(server, url, body, args, generated, 2),
        "one_file": await _reload_under_load(server, url, body, args, generated[:1], 3),
    }
    return server


async def _reload_under_load(
    server: Server, url: str, body: bytes, args: argparse.Namespace, files: list[Path], generation: int
) -> dict:
    async def rebuild() -> tuple[float, float]:
        await asyncio.sleep(args.duration / 3)
        for path in files:
            path.write_text(path.read_text().replace("prompt", "prompt (edited)", 1))
        started = time.perf_counter()
        server.process.send_signal(signal.SIGHUP)
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(server.url + "/readyz") as response:
                    if (await response.json())["generation"] >= generation:
                        return started, time.perf_counter()
                await asyncio.sleep(0.025)  # light polling: it is load on promptd too

    load_start = time.perf_counter()
    duration = max(args.duration * 2, 3.0)
    (window_start, window_end), result = await asyncio.gather(
        rebuild(), builtin_load(url, body, 4, duration, max_requests=args.max_requests, pause_s=0.005)
    )
    start_offset, end_offset = window_start - load_start, window_end - load_start
    during = [ms for t, ms in result.samples if start_offset <= t <= end_offset]
    outside = [ms for t, ms in result.samples if not start_offset <= t <= end_offset]
    return {
        "files_changed": len(files),
        "reload_s": round(window_end - window_start, 3),
        "latency_ms_outside": percentiles(outside),
        "latency_ms_during": percentiles(during),
        "requests_during": len(during),
        "errors": result.errors,
    }


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="promptd-bench-"))
    servers: list[Server] = []

    def start(name: str, argv: list[str], port: int) -> Server:
        server = Server(name, argv, port, tmp / f"{name}.log")
        servers.append(server)
        return server

    report: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_generator": "wrk" if have_wrk() and not args.no_wrk else "builtin",
        "duration_s": args.duration,
        "scenarios": {},
    }
    try:
        mock_port = free_port()
        mock = start("mock", ["-m", "benchmarks.mock_upstream", "--port", str(mock_port)], mock_port)
        base_port = free_port()
        baseline = start(
            "baseline",
            [
                "-m",
                "benchmarks.baseline_forwarder",
                "--port",
                str(base_port),
                "--upstream",
                f"http://127.0.0.1:{mock_port}",
            ],
            base_port,
        )
        # The control of the --workers pair: the forwarder served by two processes.
        base2_port = free_port()
        baseline2 = start(
            "baseline-processes2",
            [
                "-m",
                "benchmarks.baseline_forwarder",
                "--port",
                str(base2_port),
                "--upstream",
                f"http://127.0.0.1:{mock_port}",
                "--processes",
                "2",
            ],
            base2_port,
        )
        config = workload.write_config(tmp / "config", mock_port)
        p_port = free_port()
        promptd = start("promptd", promptd_args(config, p_port), p_port)
        w_port = free_port()
        workers = start("promptd-workers2", promptd_args(config, w_port, "--workers", "2"), w_port)
        # The paired runs' control: a second process with the first one's config (A/A).
        t_port = free_port()
        twin = start("promptd-twin", promptd_args(config, t_port), t_port)
        for server in (mock, baseline, baseline2, promptd, workers, twin):
            await server.wait_ready(
                "/v1/models" if server is mock else "/healthz" if server.name.startswith("promptd") else "/v1/models"
            )
        many = await many_prompts(tmp, mock, args, report)
        servers.append(many)

        plain = workload.body_bytes(workload.PLAIN_BODY)
        small = workload.body_bytes(workload.SMALL_BODY)
        large = workload.body_bytes(workload.LARGE_BODY)
        path = "/v1/chat/completions"
        console = [("console_script", promptd, None, False)]  # GET /ui/console.js, served from memory
        scenarios = [
            ("direct", mock, plain, False),
            ("baseline", baseline, plain, False),
            ("passthrough", promptd, plain, False),
            ("small_prompt", promptd, small, False),
            ("small_prompt_responses", promptd, small, False),
            ("small_prompt_rollout", promptd, workload.body_bytes(workload.ROLLOUT_BODY), False),
            ("large_prompt", promptd, large, False),
            ("baseline_stream", baseline, plain, True),
            ("stream", promptd, plain, True),
            ("stream_responses", promptd, small, True),
            ("small_prompt_many", many, small, False),
            ("small_prompt_workers2", workers, small, False),
        ]
        if args.compare_url:
            scenarios.append(("compare", OtherGateway(args.compare_pid), plain, False))
        for index, concurrency in enumerate(args.concurrency):
            for name, server, body, stream in scenarios + (console if index == 0 else []):
                if args.only and name not in args.only:
                    continue
                target = "/v1/responses" if name.endswith("_responses") else path
                if body is None:
                    target = "/ui/" + CONSOLE_SCRIPT
                url = args.compare_url if name == "compare" else server.url + target
                print(f"  {name:<24} c={concurrency:<4}", end="", flush=True, file=sys.stderr)
                result = await measure(server, url, body, concurrency, args, stream=stream)
                report["scenarios"].setdefault(name, {})[str(concurrency)] = result
                print(
                    f" {result['rps']:>9} req/s  {result['cpu_us_per_request']} µs CPU/req  errors {result['errors']}",
                    file=sys.stderr,
                )
        if not args.only or any(name.endswith(tuple(workload.BODY_SIZES)) for name in args.only):
            await sized_runs(args, report, baseline, promptd)
        if not args.only:
            report["paired"] = await paired_runs(args, promptd, many, workers, twin, baseline, baseline2, small, plain)
    finally:
        for server in reversed(servers):
            server.stop()
    add_ratios(report)
    return report


CONSOLE_SCRIPT = "console.js"


async def sized_runs(args: argparse.Namespace, report: dict, baseline: Server, promptd: Server) -> None:
    """Request bodies of each size (first concurrency level only) through the forwarder,
    promptd passthrough and promptd compiling, in interleaved passes (the order turns
    each pass); each scenario's row is its pass of median CPU. One pass of each, one
    after the other, moved the 1 MB ratios by a third between runs: the forwarder's
    own CPU per 1 MB request ranged from 556 to 1,055 µs."""
    passes = 1 if args.quick else 3
    seconds = args.duration if args.quick else max(1.0, args.duration / 2)
    concurrency = args.concurrency[0]
    url = "/v1/chat/completions"
    for label, size in workload.BODY_SIZES.items():
        plain, compiled = workload.sized_bodies(size)
        sides = [
            (f"baseline_{label}", baseline, plain),
            (f"passthrough_{label}", promptd, plain),
            (f"compile_{label}", promptd, compiled),
        ]
        results: dict[str, list[dict]] = {name: [] for name, _, _ in sides}
        for turn in range(passes):
            for name, server, body in sides[turn:] + sides[:turn]:
                if args.only and name not in args.only:
                    continue
                results[name].append(await measure(server, server.url + url, body, concurrency, args, duration=seconds))
        for name, runs in results.items():
            if not runs:
                continue
            runs.sort(key=lambda r: r["cpu_us_per_request"] or 0.0)
            result = runs[len(runs) // 2]
            result["passes"] = len(runs)
            result["errors"] = sum(r["errors"] for r in runs)  # of every pass
            report["scenarios"].setdefault(name, {})[str(concurrency)] = result
            print(
                f"  {name:<24} c={concurrency:<4} {result['rps']:>9} req/s  {result['cpu_us_per_request']} µs CPU/req"
                f" (median of {len(runs)} passes)  errors {result['errors']}",
                file=sys.stderr,
            )


async def paired_runs(
    args: argparse.Namespace,
    promptd: Server,
    many: Server,
    workers: Server,
    twin: Server,
    baseline: Server,
    baseline2: Server,
    small: bytes,
    plain: bytes,
) -> dict:
    """A/B comparisons the noise of a shared machine would hide in separate runs:
    the two sides alternate in short rounds (A B, B A, ...); the ratio is the
    median of the rounds' own A/B ratios, so a drift of the machine's speed
    across the rounds cancels out (the medians of each side are reported too)."""
    rounds = 3 if args.quick else 10
    seconds = max(1.0, args.duration / 2)
    concurrency = args.concurrency[0]
    rollout = workload.body_bytes(workload.ROLLOUT_BODY)
    small_user = workload.body_bytes(workload.SMALL_USER_BODY)
    url = "/v1/chat/completions"
    responses_url = "/v1/responses"
    no_usage = {"X-Mock-Usage": "off"}  # the mock's answer without `usage`: nothing to count
    plain_1mb, compiled_1mb = workload.sized_bodies(workload.BODY_SIZES["1mb"])
    Side = tuple[Server, str, bytes, dict[str, str]]
    pairs: dict[str, tuple[Side, Side]] = {
        # How far two processes of the same code and config differ in this run: the noise
        # floor of the comparisons between processes (10,000 prompts, workers).
        "control: a second process vs the first (same config)": ((twin, url, small, {}), (promptd, url, small, {})),
        "10,000 prompts vs 12 (small prompt)": ((many, url, small, {}), (promptd, url, small, {})),
        "--workers 2 vs 1 (small prompt)": ((workers, url, small, {}), (promptd, url, small, {})),
        # The same question asked of the forwarder: what two processes cost any server on this machine.
        "the forwarder: 2 processes vs 1": ((baseline2, url, plain, {}), (baseline, url, plain, {})),
        "responses vs chat completions (small prompt)": (
            (promptd, responses_url, small, {}),
            (promptd, url, small, {}),
        ),
        "rollout vs the same request without one": ((promptd, url, rollout, {}), (promptd, url, small_user, {})),
        "rollout + usage-bearing answer vs neither": (
            (promptd, url, rollout, {}),
            (promptd, url, small_user, no_usage),
        ),
        # The body-size scenarios' largest case, against the forwarder with the same body: the
        # forwarder's own CPU per MB moves by half between runs of the table.
        "1 MB body: passthrough vs the forwarder": ((promptd, url, plain_1mb, {}), (baseline, url, plain_1mb, {})),
        "1 MB body: compile vs the forwarder": ((promptd, url, compiled_1mb, {}), (baseline, url, plain_1mb, {})),
    }
    out = {}
    for name, (side_a, side_b) in pairs.items():
        samples: tuple[list[dict], list[dict]] = ([], [])
        for round_ in range(rounds):
            sides = ((0, *side_a), (1, *side_b))
            for side, server, path, body, headers in sides if round_ % 2 == 0 else sides[::-1]:
                result = await measure(
                    server, server.url + path, body, concurrency, args, duration=seconds, headers=headers
                )
                if result["cpu_us_per_request"] is not None:
                    samples[side].append(result)
        out[name] = _paired_summary(rounds, *samples, by_spread=side_a[0].workers > 1)
        print(
            f"  paired: {name}: {out[name]['ratio']}x ({out[name]['cpu_us_a']} vs {out[name]['cpu_us_b']} µs)",
            file=sys.stderr,
        )
    return out


def _paired_summary(rounds: int, a: list[dict], b: list[dict], by_spread: bool = False) -> dict:
    """Each side's median CPU µs and event-loop sleeps per request, and the median
    of the rounds' own A/B ratios. `by_spread` (A has several workers): the rounds
    are also split by where the connections landed, all on one worker or spread."""
    cpu = lambda side: [r["cpu_us_per_request"] for r in side]  # noqa: E731
    ratios = [x["cpu_us_per_request"] / y["cpu_us_per_request"] for x, y in zip(a, b, strict=False)]
    summary = {
        "rounds": rounds,
        "cpu_us_a": round(statistics.median(cpu(a)), 1),
        "cpu_us_b": round(statistics.median(cpu(b)), 1),
        "sleeps_a": round(statistics.median(r["sleeps_per_request"] for r in a), 2),
        "sleeps_b": round(statistics.median(r["sleeps_per_request"] for r in b), 2),
        "ratio": round(statistics.median(ratios), 3) if ratios else None,
    }
    if by_spread:
        for key, spread in (("one_worker", False), ("spread", True)):
            picked = [ratio for ratio, r in zip(ratios, a, strict=False) if (r["busy_processes"] > 1) == spread]
            summary[f"ratio_{key}"] = round(statistics.median(picked), 3) if picked else None
            summary[f"rounds_{key}"] = len(picked)
    return summary


def add_ratios(report: dict) -> None:
    scenarios = report["scenarios"]
    for name, by_concurrency in scenarios.items():
        for concurrency, result in by_concurrency.items():
            if name == "console_script":
                continue  # a GET of a static file: nothing to compare it with
            size = name.rpartition("_")[2]
            if size in workload.BODY_SIZES:
                reference = f"baseline_{size}"
            else:
                reference = "baseline_stream" if "stream" in name else "baseline"
            base = scenarios.get(reference, {}).get(concurrency)
            if base and base["cpu_us_per_request"] and result["cpu_us_per_request"] is not None:
                result["cpu_ratio_vs_baseline"] = round(result["cpu_us_per_request"] / base["cpu_us_per_request"], 2)
            if name == "stream" and base and base["ttfb_ms"] and result["ttfb_ms"]:
                result["ttfb_added_ms_p50"] = round(result["ttfb_ms"]["p50"] - base["ttfb_ms"]["p50"], 3)
            if name == "small_prompt_workers2":
                one = scenarios.get("small_prompt", {}).get(concurrency)
                if one and one["cpu_us_per_request"] and result["cpu_us_per_request"]:
                    result["cpu_ratio_vs_one_worker"] = round(
                        result["cpu_us_per_request"] / one["cpu_us_per_request"], 2
                    )
            if name == "small_prompt_many":
                few = scenarios.get("small_prompt", {}).get(concurrency)
                if few and few["cpu_us_per_request"]:
                    result["cpu_ratio_vs_few_prompts"] = round(
                        result["cpu_us_per_request"] / few["cpu_us_per_request"], 2
                    )


def markdown(report: dict) -> str:
    lines = [
        f"# promptd benchmark — {report['date']}",
        "",
        f"Machine: {report['machine']}. Load: {report['load_generator']}, {report['duration_s']} s per scenario.",
        "CPU per request is the server process's user+system time divided by the requests it answered.",
        "",
        "| scenario | conc. | req/s | p50 ms | p90 ms | p99 ms | errors | CPU µs/req | × baseline | sleeps/req | TTFB p50 ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_concurrency in report["scenarios"].items():
        for concurrency, r in by_concurrency.items():
            lat = r["latency_ms"]
            lines.append(
                f"| {name} | {concurrency} | {r['rps']} | {lat.get('p50', '')} | {lat.get('p90', '')} | {lat.get('p99', '')} "
                f"| {r['errors']} | {r['cpu_us_per_request']} | {r.get('cpu_ratio_vs_baseline', '')} "
                f"| {_sleeps(r)} | {r['ttfb_ms'].get('p50', '')} | {r['peak_rss_mb']} |"
            )
    if report.get("paired"):
        lines += [
            "",
            "Paired A/B (the two sides alternate in short rounds; each side's median CPU µs and event-loop sleeps per request, and the median of the rounds' own A / B ratios):",
            "",
            "| comparison | rounds | A µs | B µs | A sleeps/req | B sleeps/req | A / B |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in report["paired"].items():
            lines.append(
                f"| {name} | {r['rounds']} | {r['cpu_us_a']} | {r['cpu_us_b']} | {r['sleeps_a']} | {r['sleeps_b']} "
                f"| {r['ratio']} |"
            )
        for name, r in report["paired"].items():
            if "ratio_spread" in r:
                lines += [
                    "",
                    f"{name}, by where the rounds' connections landed: all on one process in {r['rounds_one_worker']} "
                    f"rounds (A / B {r['ratio_one_worker']}), spread over the processes in {r['rounds_spread']} "
                    f"(A / B {r['ratio_spread']}).",
                ]
    if "startup" in report:
        s = report["startup"]
        lines += [
            "",
            f"Start-up with {s['prompts']} prompts ({s['versions']} versions): ready after {s['ready_after_s']} s, "
            f"peak RSS {s['rss_mb']} MB.",
            "",
            "| reload under steady load | files changed | reload s | p50 / p99 ms outside | p50 / p99 ms during | requests during |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in report["reload"].items():
            out, dur = r["latency_ms_outside"], r["latency_ms_during"]
            lines.append(
                f"| {name} | {r['files_changed']} | {r['reload_s']} | {out.get('p50')} / {out.get('p99')} "
                f"| {dur.get('p50')} / {dur.get('p99')} | {r['requests_during']} |"
            )
    return "\n".join(lines) + "\n"


def _sleeps(result: dict) -> str:
    """Sleeps per request, and with several busy processes how many there were."""
    sleeps = result.get("sleeps_per_request")
    if sleeps is None:
        return ""
    busy = result.get("busy_processes") or 1
    return f"{sleeps} ({busy} busy)" if busy > 1 else str(sleeps)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario (default 5)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[8, 64],
        help="comma-separated levels (default 8,64)",
    )
    parser.add_argument("--many", type=int, default=10000, help="prompts in the many-prompts scenario (default 10000)")
    parser.add_argument("--max-requests", type=int, default=None, help="cap per scenario (built-in generator)")
    parser.add_argument(
        "--compare-url",
        help="another OpenAI-compatible gateway already running on 127.0.0.1 "
        "(its chat completions URL); sent the plain request",
    )
    parser.add_argument("--compare-pid", type=int, help="that gateway's process id, to measure its CPU and RSS")
    parser.add_argument("--no-wrk", action="store_true", help="use the built-in load generator even if wrk exists")
    parser.add_argument("--only", nargs="*", help="run only these scenarios")
    parser.add_argument("--quick", action="store_true", help="tiny scale: 300 requests per scenario, 200 prompts")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write latest.json and latest.md")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.concurrency, args.many, args.max_requests, args.no_wrk = 2.0, [4], 200, 300, True
    report = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
