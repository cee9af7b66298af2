"""Every metric of README "Metrics", registered in one place.

The request path records into `LoopMetrics`: plain counters and bucket lists
updated on the event loop thread (no locks, no label lookups), exported by a
collector when `/metrics` is scraped. With several workers, prometheus-client's
multiprocess mode is used instead (PROMETHEUS_MULTIPROC_DIR, set by the
supervisor): `SharedMetrics` writes each observation to the shared files and
`/metrics` merges every worker's.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
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

from promptd.ops.logs import log_writer

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
        self.tokens: dict[tuple[str, str, str], int] = {}
        self.duration: dict[tuple[str, str], _Buckets] = {}
        self.overhead: dict[str, _Buckets] = {}
        self.ttfb: dict[str, _Buckets] = {}
        self.compile = _Buckets(OVERHEAD_BUCKETS)
        self.inflight = 0

    def started(self) -> None:
        self.inflight += 1

    def finished(self) -> None:
        self.inflight -= 1

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
        for kind, count in zip(TOKEN_KINDS, counts, strict=True):
            if count:
                key = (prompt_id, version, kind)
                self.tokens[key] = self.tokens.get(key, 0) + count

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
        for labels, count in list(self.tokens.items()):
            tokens.add_metric(labels, count)
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


class SharedMetrics:
    """The same interface as `LoopMetrics`, on prometheus-client's multiprocess files."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "promptd_requests",
            HELP["requests"],
            ["endpoint", "prompt_id", "prompt_version", "status"],
            registry=registry,
        )
        self._tokens = Counter(
            "promptd_tokens", HELP["tokens"], ["prompt_id", "prompt_version", "kind"], registry=registry
        )
        self._duration = Histogram(
            "promptd_request_duration_seconds",
            HELP["duration"],
            ["endpoint", "prompt_id"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._overhead = Histogram(
            "promptd_overhead_seconds", HELP["overhead"], ["endpoint"], buckets=OVERHEAD_BUCKETS, registry=registry
        )
        self._compile = Histogram(
            "promptd_compile_duration_seconds", HELP["compile"], buckets=OVERHEAD_BUCKETS, registry=registry
        )
        self._ttfb = Histogram(
            "promptd_upstream_ttfb_seconds", HELP["ttfb"], ["upstream"], buckets=DURATION_BUCKETS, registry=registry
        )
        self._inflight = Gauge(
            "promptd_inflight_requests", HELP["inflight"], registry=registry, multiprocess_mode="livesum"
        )

    def started(self) -> None:
        self._inflight.inc()

    def finished(self) -> None:
        self._inflight.dec()

    def request_done(
        self, endpoint: str, prompt_id: str, version: str, status: int, duration: float, overhead: float
    ) -> None:
        self._requests.labels(endpoint, prompt_id, version, str(status)).inc()
        self._duration.labels(endpoint, prompt_id).observe(duration)
        self._overhead.labels(endpoint).observe(overhead)

    def count_tokens(self, prompt_id: str, version: str, counts: tuple[int, int, int]) -> None:
        for kind, count in zip(TOKEN_KINDS, counts, strict=True):
            if count:
                self._tokens.labels(prompt_id, version, kind).inc(count)

    def upstream_ttfb(self, upstream: str, seconds: float) -> None:
        self._ttfb.labels(upstream).observe(seconds)

    def compiled(self, seconds: float) -> None:
        self._compile.observe(seconds)


class Metrics:
    """Request-path metrics (`requests`), plus the rarer events as prometheus-client metrics."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        disable_created_metrics()  # `*_created` series double the scrape and tell operators nothing here
        registry = CollectorRegistry(auto_describe=True)
        self.registry = registry
        self.requests: LoopMetrics | SharedMetrics
        if self.multiprocess:
            self.requests = SharedMetrics(registry)
        else:
            self.requests = LoopMetrics()
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
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
