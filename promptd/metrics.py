"""Every metric of DESIGN.md 4.2, registered in one place.

Label children are looked up once and kept, so recording a request costs a few
dict hits instead of prometheus-client's locked `labels()` walk. With several
workers prometheus-client's multiprocess mode is used (PROMETHEUS_MULTIPROC_DIR,
set by the supervisor) and `/metrics` merges every worker's files.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import gc_collector, platform_collector, process_collector
from prometheus_client import multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "unknown"
NONE = "none"

# Fine enough to tell 50 µs from 100 µs: promptd's own time is tens of microseconds.
OVERHEAD_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005,
    0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        disable_created_metrics()  # `*_created` series double the scrape and tell operators nothing here
        registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = registry
        if not self.multiprocess:
            process_collector.ProcessCollector(registry=registry)
            platform_collector.PlatformCollector(registry=registry)
            gc_collector.GCCollector(registry=registry)
        self.requests = Counter(
            "promptd_requests", "Requests answered, by endpoint, prompt and HTTP status.",
            ["endpoint", "prompt_id", "status"], registry=registry,
        )
        self.duration = Histogram(
            "promptd_request_duration_seconds", "Time from request to the last byte of the answer.",
            ["endpoint", "prompt_id"], buckets=DURATION_BUCKETS, registry=registry,
        )
        self.overhead = Histogram(
            "promptd_overhead_seconds",
            "Time spent in promptd itself: total minus waiting on the upstream (streams: up to the first byte).",
            ["endpoint"], buckets=OVERHEAD_BUCKETS, registry=registry,
        )
        self.compile = Histogram(
            "promptd_compile_duration_seconds", "Resolving, validating and rendering a prompt.",
            buckets=OVERHEAD_BUCKETS, registry=registry,
        )
        self.ttfb = Histogram(
            "promptd_upstream_ttfb_seconds", "Time from sending to the upstream to its response headers.",
            ["upstream"], buckets=DURATION_BUCKETS, registry=registry,
        )
        self.upstream_errors = Counter(
            "promptd_upstream_errors", "Upstream failures: connect, timeout, reset, status_5xx.",
            ["upstream", "kind"], registry=registry,
        )
        self.prompt_errors = Counter(
            "promptd_prompt_errors", "Requests refused while compiling a prompt, by prompt and error code.",
            ["prompt_id", "code"], registry=registry,
        )
        self.reloads = Counter(
            "promptd_config_reloads", "Prompt set reloads, by result.", ["result"], registry=registry,
        )
        self.generation = Gauge(
            "promptd_config_generation", "Generation of the prompt set being served.",
            registry=registry, multiprocess_mode="livemax",
        )
        self.prompts_loaded = Gauge(
            "promptd_prompts_loaded", "Prompts in the set being served.",
            registry=registry, multiprocess_mode="livemax",
        )
        self.inflight = Gauge(
            "promptd_inflight_requests", "Requests being handled now.",
            registry=registry, multiprocess_mode="livesum",
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request_done(self, endpoint: str, prompt_id: str, status: int, duration: float, overhead: float | None) -> None:
        self._child(self.requests, endpoint, prompt_id, str(status)).inc()
        self._child(self.duration, endpoint, prompt_id).observe(duration)
        if overhead is not None:
            self._child(self.overhead, endpoint).observe(overhead)

    def upstream_ttfb(self, upstream: str, seconds: float) -> None:
        self._child(self.ttfb, upstream).observe(seconds)

    def upstream_error(self, upstream: str, kind: str) -> None:
        self._child(self.upstream_errors, upstream, kind).inc()

    def prompt_error(self, prompt_id: str, code: str) -> None:
        self._child(self.prompt_errors, prompt_id, code).inc()

    def render(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
