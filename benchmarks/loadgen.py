"""Load generators: wrk when it is installed, a built-in asyncio one otherwise.

Both are bounded in time (and the built-in one in count) and are only ever
pointed at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: dict[str, float] = field(default_factory=dict)  # p50, p90, p99
    ttfb_ms: dict[str, float] = field(default_factory=dict)  # streams only
    samples: list[tuple[float, float]] = field(default_factory=list)  # (start offset s, latency ms), built-in only
    tool: str = "builtin"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(pick(0.50), 3), "p90": round(pick(0.90), 3), "p99": round(pick(0.99), 3)}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _check_local(url: str) -> None:
    if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise SystemExit(f"refusing to load-test {url}: only 127.0.0.1 is allowed")


async def builtin_load(
    url: str,
    body: bytes | None,
    concurrency: int,
    duration: float,
    max_requests: int | None = None,
    stream: bool = False,
    pause_s: float = 0.0,
    extra_headers: dict[str, str] | None = None,
) -> LoadResult:
    """`concurrency` clients in a loop until `duration` s have passed (or `max_requests` were sent),
    each waiting `pause_s` between its requests (a steady load below saturation)."""
    _check_local(url)
    result = LoadResult()
    latencies: list[float] = []
    ttfbs: list[float] = []
    budget = [max_requests if max_requests is not None else 1 << 62]
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    started = time.perf_counter()
    deadline = started + duration

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            try:
                request = (
                    session.get(url, headers=extra_headers)
                    if body is None
                    else session.post(url, data=body, headers=headers)
                )
                async with request as response:
                    if stream:
                        first = await response.content.readany()
                        ttfbs.append((time.perf_counter() - t0) * 1000)
                        if first:
                            await response.content.read()
                    else:
                        await response.read()
                    ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            latency = (time.perf_counter() - t0) * 1000
            result.requests += 1
            result.errors += not ok
            latencies.append(latency)
            result.samples.append((t0 - started, latency))
            if pause_s:
                await asyncio.sleep(pause_s)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    result.latencies_ms = percentiles(latencies)
    result.ttfb_ms = percentiles(ttfbs)
    return result


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    return float(match[1]) * _UNITS[match[2]]


def wrk_load(
    url: str, body: bytes | None, concurrency: int, duration: float, headers: dict[str, str] | None = None
) -> LoadResult:
    """`body` None: GET requests."""
    _check_local(url)
    script = (
        'wrk.method = "GET"\n'
        if body is None
        else f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body.decode()}]==]\n'
    )
    script += "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        output = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", "-s", lua.name, url],
            capture_output=True,
            text=True,
            timeout=duration + 30,
        ).stdout
    result = LoadResult(tool="wrk")
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", output)
    assert total, output
    result.requests = int(total[1])
    result.seconds = _ms(total[2] + total[3]) / 1000
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result.errors = int(errors[1]) if errors else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sockets:
        result.errors += sum(int(n) for n in sockets.groups())
    for name, key in (("50%", "p50"), ("90%", "p90"), ("99%", "p99")):
        match = re.search(rf"^\s+{name}\s+([\d.]+\w+)", output, re.MULTILINE)
        if match:
            result.latencies_ms[key] = round(_ms(match[1]), 3)
    return result
