"""Every metric of README "Metrics", registered in one place.

The request path records into `LoopMetrics`: plain counters and bucket lists
updated on the event loop thread (no locks, no label lookups), exported by a
collector when `/metrics` is scraped. With several workers (PROMETHEUS_MULTIPROC_DIR,
set by the supervisor) each worker still records into its own `LoopMetrics`, and
publishes a snapshot of it to the shared directory when it changed, at most every
`PUBLISH_INTERVAL_S` (and right before it answers a scrape); `/metrics` sums every
worker's latest snapshot. Writing each observation to prometheus-client's shared
files instead cost about a third more CPU per request. The rarer events (reloads,
errors) use prometheus-client's multiprocess mode as they are.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    multiprocess,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from promptd.jsonio import decode_json, encode_json
from promptd.ops.logs import log_writer

PUBLISH_INTERVAL_S = 0.2
_SNAPSHOT_PREFIX = "requests-"

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"
NONE = "none"

# Fine enough to tell 50 µs from 100 µs: promptd's own time is tens of microseconds.
OVERHEAD_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.000075,
    0.0001,
    0.00015,
    0.0002,
    0.0003,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

HELP = {
    "requests": "Requests answered, by endpoint, prompt, prompt version and HTTP status.",
    "duration": "Time from request to the last byte of the answer.",
    "overhead": "Time spent in promptd itself: total minus waiting on the upstream (streams: up to the first byte).",
    "compile": "Resolving, validating and rendering a prompt.",
    "ttfb": "Time from sending to the upstream to its response headers.",
    "inflight": "Requests being handled now.",
    "tokens": "Tokens the upstream reported in its usage, by prompt, version and kind (prompt, completion, cached).",
}
TOKEN_KINDS = ("prompt", "completion", "cached")

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class _Buckets:
    """A cumulative histogram: one count per bucket (the last is +Inf) and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, counts: list[int], total: float) -> None:
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.sum += total

    def exposition(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out


class LoopMetrics(Collector):
    """The request-path metrics of one process, updated only from the event loop."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str], int] = {}
        self.tokens: dict[tuple[str, str], list[int]] = {}  # (prompt, version) -> a count per TOKEN_KINDS
        self.duration: dict[tuple[str, str], _Buckets] = {}
        self.overhead: dict[str, _Buckets] = {}
        self.ttfb: dict[str, _Buckets] = {}
        self.compile = _Buckets(OVERHEAD_BUCKETS)
        self.inflight = 0

    def started(self) -> None:
        self.inflight += 1

    def finished(self) -> None:
        self.inflight -= 1

    def snapshot(self) -> dict[str, Any]:
        """Everything recorded so far, as JSON-able data (see `merge`)."""

        def histograms(series: dict[Any, _Buckets]) -> list[Any]:
            return [[list(k) if isinstance(k, tuple) else [k], b.counts, b.sum] for k, b in series.items()]

        return {
            "requests": [[list(k), v] for k, v in self.requests.items()],
            "tokens": [[list(k), v] for k, v in self.tokens.items()],  # v: a count per TOKEN_KINDS
            "duration": histograms(self.duration),
            "overhead": histograms(self.overhead),
            "ttfb": histograms(self.ttfb),
            "compile": [self.compile.counts, self.compile.sum],
            "inflight": self.inflight,
        }

    def merge(self, snapshot: dict[str, Any], *, live: bool) -> None:
        """Add a worker's snapshot; a dead worker's in-flight count is not added."""
        for key, value in snapshot["requests"]:
            self.requests[tuple(key)] = self.requests.get(tuple(key), 0) + value
        for key, counts in snapshot["tokens"]:
            totals = self.tokens.setdefault(tuple(key), [0] * len(TOKEN_KINDS))
            for index, count in enumerate(counts):
                totals[index] += count
        for name, bounds in (
            ("duration", DURATION_BUCKETS),
            ("overhead", OVERHEAD_BUCKETS),
            ("ttfb", DURATION_BUCKETS),
        ):
            series = getattr(self, name)
            for key, counts, total in snapshot[name]:
                label = key[0] if len(key) == 1 else tuple(key)  # one label: a plain string key
                buckets = series.get(label)
                if buckets is None:
                    buckets = series[label] = _Buckets(bounds)
                buckets.add(counts, total)
        self.compile.add(*snapshot["compile"])
        if live:
            self.inflight += snapshot["inflight"]

    def request_done(
        self, endpoint: str, prompt_id: str, version: str, status: int, duration: float, overhead: float
    ) -> None:
        key = (endpoint, prompt_id, version, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        buckets = self.duration.get((endpoint, prompt_id))
        if buckets is None:
            buckets = self.duration[(endpoint, prompt_id)] = _Buckets(DURATION_BUCKETS)
        buckets.observe(duration)
        buckets = self.overhead.get(endpoint)
        if buckets is None:
            buckets = self.overhead[endpoint] = _Buckets(OVERHEAD_BUCKETS)
        buckets.observe(overhead)

    def count_tokens(self, prompt_id: str, version: str, counts: tuple[int, int, int]) -> None:
        totals = self.tokens.get((prompt_id, version))
        if totals is None:
            totals = self.tokens[(prompt_id, version)] = [0, 0, 0]
        totals[0] += counts[0]
        totals[1] += counts[1]
        totals[2] += counts[2]

    def upstream_ttfb(self, upstream: str, seconds: float) -> None:
        buckets = self.ttfb.get(upstream)
        if buckets is None:
            buckets = self.ttfb[upstream] = _Buckets(DURATION_BUCKETS)
        buckets.observe(seconds)

    def compiled(self, seconds: float) -> None:
        self.compile.observe(seconds)

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(
            "promptd_requests", HELP["requests"], labels=["endpoint", "prompt_id", "prompt_version", "status"]
        )
        for labels, count in list(self.requests.items()):
            requests.add_metric(labels, count)
        yield requests
        tokens = CounterMetricFamily("promptd_tokens", HELP["tokens"], labels=["prompt_id", "prompt_version", "kind"])
        for (prompt_id, version), totals in list(self.tokens.items()):
            for kind, count in zip(TOKEN_KINDS, totals, strict=True):
                if count:  # a kind the upstream never reported has no series
                    tokens.add_metric([prompt_id, version, kind], count)
        yield tokens
        yield self._histogram("promptd_request_duration_seconds", "duration", ["endpoint", "prompt_id"], self.duration)
        yield self._histogram(
            "promptd_overhead_seconds", "overhead", ["endpoint"], {(k,): v for k, v in self.overhead.items()}
        )
        yield self._histogram("promptd_compile_duration_seconds", "compile", [], {(): self.compile})
        yield self._histogram(
            "promptd_upstream_ttfb_seconds", "ttfb", ["upstream"], {(k,): v for k, v in self.ttfb.items()}
        )
        yield GaugeMetricFamily("promptd_inflight_requests", HELP["inflight"], value=self.inflight)

    @staticmethod
    def _histogram(
        name: str, help_key: str, labels: list[str], series: dict[tuple[str, ...], _Buckets]
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, HELP[help_key], labels=labels)
        for values, buckets in list(series.items()):
            family.add_metric(list(values), buckets.exposition(), sum_value=buckets.sum)
        return family


class Snapshots:
    """With several workers: this worker's `LoopMetrics` published to the shared
    directory, and every worker's summed for a scrape."""

    def __init__(self, directory: Path, metrics: LoopMetrics) -> None:
        self.directory = directory
        self.metrics = metrics
        self.path = directory / f"{_SNAPSHOT_PREFIX}{os.getpid()}.json"
        self._published: bytes | None = None

    def publish(self) -> None:
        """Write this worker's snapshot if it changed since the last one."""
        data = encode_json(self.metrics.snapshot())
        if data == self._published:
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self.path)
        self._published = data

    def merged(self) -> LoopMetrics:
        self.publish()
        total = LoopMetrics()
        for path in sorted(self.directory.glob(f"{_SNAPSHOT_PREFIX}*.json")):
            try:
                snapshot = decode_json(path.read_bytes())
            except (OSError, ValueError):
                continue  # replaced or removed while being read: the next scrape has it
            pid = int(path.stem.removeprefix(_SNAPSHOT_PREFIX))
            total.merge(snapshot, live=_alive(pid))
        return total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Metrics:
    """Request-path metrics (`requests`), plus the rarer events as prometheus-client metrics."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        disable_created_metrics()  # `*_created` series double the scrape and tell operators nothing here
        registry = CollectorRegistry(auto_describe=True)
        self.registry = registry
        self.requests = LoopMetrics()
        self.snapshots: Snapshots | None = None
        if self.multiprocess:
            self.snapshots = Snapshots(Path(os.environ[MULTIPROC_ENV]), self.requests)
        else:
            registry.register(self.requests)
            process_collector.ProcessCollector(registry=registry)
            platform_collector.PlatformCollector(registry=registry)
            gc_collector.GCCollector(registry=registry)
        self.upstream_errors = Counter(
            "promptd_upstream_errors",
            "Upstream failures: connect, timeout, reset, status_5xx.",
            ["upstream", "kind"],
            registry=registry,
        )
        self.prompt_errors = Counter(
            "promptd_prompt_errors",
            "Requests refused while compiling a prompt, by prompt and error code.",
            ["prompt_id", "code"],
            registry=registry,
        )
        self.reloads = Counter(
            "promptd_config_reloads", "Prompt set reloads, by result.", ["result"], registry=registry
        )
        self.generation = Gauge(
            "promptd_config_generation",
            "Generation of the prompt set being served.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.prompts_loaded = Gauge(
            "promptd_prompts_loaded",
            "Prompts in the set being served.",
            registry=registry,
            multiprocess_mode="livemax",
        )

        self.log_lines_dropped = Counter(
            "promptd_log_lines_dropped",
            "Log lines dropped because the log sink (stderr) did not keep up.",
            registry=registry,
        )
        log_writer().on_drop = self.log_lines_dropped.inc

    def upstream_error(self, upstream: str, kind: str) -> None:
        self.upstream_errors.labels(upstream, kind).inc()

    def prompt_error(self, prompt_id: str, code: str) -> None:
        self.prompt_errors.labels(prompt_id, code).inc()

    def render(self) -> bytes:
        if self.snapshots is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(self.snapshots.merged())
            return generate_latest(registry)
        return generate_latest(self.registry)
