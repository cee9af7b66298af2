"""Instructions per request under valgrind's callgrind: the same figure every run,
whatever else the machine is doing (CPU seconds on a shared machine move by 25%).

    python -m benchmarks.instructions                 # the default scenarios, about 3 minutes
    python -m benchmarks.instructions small_prompt passthrough --requests 400

Each scenario starts the mock upstream and one server under callgrind on
127.0.0.1, warms it up, zeroes the counters (`callgrind_control --dump`), sends
`--requests` requests over 4 keep-alive connections, dumps again and divides.
Counted: the server's user-space instructions (not the kernel's, not sleeping).
Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks import workload

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 4
MANY = 10_000


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"not ready: {url}")


def _scenarios() -> dict[str, tuple[str, str, bytes, dict[str, str]]]:
    """name -> (server: baseline|promptd|promptd-many, path, body, extra headers);
    promptd-many serves MANY generated prompts beside the benchmark's own."""
    plain = workload.body_bytes(workload.PLAIN_BODY)
    out = {
        "baseline": ("baseline", "/v1/chat/completions", plain, {}),
        "passthrough": ("promptd", "/v1/chat/completions", plain, {}),
        "small_prompt": ("promptd", "/v1/chat/completions", workload.body_bytes(workload.SMALL_BODY), {}),
        "small_prompt_many": ("promptd-many", "/v1/chat/completions", workload.body_bytes(workload.SMALL_BODY), {}),
        "small_prompt_responses": ("promptd", "/v1/responses", workload.body_bytes(workload.SMALL_BODY), {}),
        "small_prompt_rollout": ("promptd", "/v1/chat/completions", workload.body_bytes(workload.ROLLOUT_BODY), {}),
        "small_prompt_same_user": (
            "promptd",
            "/v1/chat/completions",
            workload.body_bytes(workload.SMALL_USER_BODY),
            {},
        ),
        # The same request answered without `usage` (the mock leaves it out): nothing to count.
        "small_prompt_same_user_no_usage": (
            "promptd",
            "/v1/chat/completions",
            workload.body_bytes(workload.SMALL_USER_BODY),
            {"X-Mock-Usage": "off"},
        ),
    }
    passthrough_1mb, compile_1mb = workload.sized_bodies(workload.BODY_SIZES["1mb"])
    out["baseline_1mb"] = ("baseline", "/v1/chat/completions", passthrough_1mb, {})
    out["passthrough_1mb"] = ("promptd", "/v1/chat/completions", passthrough_1mb, {})
    out["compile_1mb"] = ("promptd", "/v1/chat/completions", compile_1mb, {})
    return out


def measure(
    name: str, kind: str, path: str, body: bytes, headers: dict[str, str], requests: int, cache_sim: bool = False
) -> dict[str, float]:
    """Per request: instructions (`Ir`) and, with `cache_sim`, the simulated
    first-level data cache misses (`D1`) and last-level cache misses, data and
    instructions (`LL`)."""
    tmp = Path(tempfile.mkdtemp(prefix="promptd-callgrind-"))
    processes = []
    try:
        mock_port = _port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.mock_upstream", "--port", str(mock_port)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait(f"http://127.0.0.1:{mock_port}/v1/models")
        port = _port()
        if kind == "baseline":
            argv = [
                "-m",
                "benchmarks.baseline_forwarder",
                "--port",
                str(port),
                "--upstream",
                f"http://127.0.0.1:{mock_port}",
            ]
            ready = f"http://127.0.0.1:{port}/v1/models"
        else:
            config = workload.write_config(
                tmp / "config", mock_port, watch=False, many=MANY if kind == "promptd-many" else 0
            )
            argv = ["-m", "promptd", "serve", str(config), "--port", str(port)]
            ready = f"http://127.0.0.1:{port}/healthz"
        out = tmp / "callgrind.out"
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--cache-sim={'yes' if cache_sim else 'no'}",
                f"--callgrind-out-file={out}",
                sys.executable,
                *argv,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(server)
        _wait(ready, 900)

        def load(count: int) -> None:
            def client() -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                for _ in range(count // CONNECTIONS):
                    connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
                    response = connection.getresponse()
                    response.read()
                    if response.status != 200:
                        raise SystemExit(f"{name}: HTTP {response.status}")

            threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        def dumped() -> dict[str, int]:
            subprocess.run(["callgrind_control", "--dump", str(server.pid)], capture_output=True, check=False)
            time.sleep(1.0)
            totals: dict[str, int] = {}
            for part in glob.glob(f"{out}*"):
                with open(part) as f:
                    for line in f:
                        if line.startswith("events:"):
                            events = line.split()[1:]
                        elif line.startswith("summary:"):
                            for event, count in zip(events, line.split()[1:], strict=True):
                                totals[event] = totals.get(event, 0) + int(count)
                            break
                os.remove(part)
            return totals

        load(max(100, requests // 4))  # warm-up: imports, first calls, pools
        dumped()
        load(requests)
        totals = dumped()
        sent = requests // CONNECTIONS * CONNECTIONS
        figures = {"Ir": totals["Ir"] / sent}
        if cache_sim:
            figures["D1"] = (totals["D1mr"] + totals["D1mw"]) / sent
            figures["LL"] = (totals["DLmr"] + totals["DLmw"] + totals["ILmr"]) / sent
        return figures
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scenarios = _scenarios()
    parser.add_argument("names", nargs="*", metavar="SCENARIO", help=f"default: all of {', '.join(scenarios)}")
    parser.add_argument("--requests", type=int, default=400, help="requests counted per scenario (default 400)")
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate the caches: first-level data misses and last-level misses per request (slower)",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    unknown = [name for name in args.names if name not in scenarios]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r} (scenarios: {', '.join(scenarios)})")
    figures = {}
    for name in args.names or scenarios:
        kind, path, body, headers = scenarios[name]
        requests = args.requests if len(body) < 100_000 else max(CONNECTIONS * 10, args.requests // 8)
        figures[name] = measure(name, kind, path, body, headers, requests, args.cache_sim)
        print(f"  {name:<32} {figures[name]['Ir'] / 1000:9.1f} k instructions/request", file=sys.stderr)
    misses = " | D1 misses / request | LL misses / request" if args.cache_sim else ""
    print(f"| scenario | k instructions / request | × baseline{misses} |")
    print("|---|---|---|" + ("---|---|" if args.cache_sim else ""))
    for name, figure in figures.items():
        reference = figures.get("baseline_1mb" if name.endswith("_1mb") else "baseline")
        ratio = f"{figure['Ir'] / reference['Ir']:.2f}" if reference else ""
        cache = f" | {figure['D1']:.0f} | {figure['LL']:.0f}" if args.cache_sim else ""
        print(f"| {name} | {figure['Ir'] / 1000:.1f} | {ratio}{cache} |")


if __name__ == "__main__":
    main()
