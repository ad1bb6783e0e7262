"""Prometheus metrics of one server: its own registry (never the global one), request
counters and latency, batch sizes, and the engine's per-source counters read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewardhub.engine import Engine

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's metrics; ``render()`` is the /metrics body."""

    def __init__(self, engine: Engine) -> None:
        import prometheus_client as pc

        self._pc = pc
        self.registry = pc.CollectorRegistry(auto_describe=True)
        self.requests = pc.Counter(
            "rewardhub_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = pc.Histogram(
            "rewardhub_request_seconds",
            "request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = pc.Histogram(
            "rewardhub_batch_size",
            "samples per pipeline batch (micro-batched requests share one)",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inflight = pc.Gauge(
            "rewardhub_inflight_requests", "scoring requests being served", registry=self.registry
        )
        self.receiving = 0
        """scoring requests whose body is still arriving (a plain count, read when scraped)"""
        self.body_reading = pc.Gauge(
            "rewardhub_bodies_receiving",
            "scoring requests whose body is still arriving (they hold no in-flight slot)",
            registry=self.registry,
        )
        self.body_reading.set_function(lambda: self.receiving)
        self.body_timeouts = pc.Counter(
            "rewardhub_body_timeouts",
            "request bodies not received within the body deadline (answered 408)",
            ["route"],
            registry=self.registry,
        )
        self.registry.register(_EngineCollector(engine))
        # the labelled children, looked up once per route and status (not per request)
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def count_inflight(self, read: Callable[[], float]) -> None:
        """The in-flight gauge reads ``read()`` when scraped (nothing per request)."""
        self.inflight.set_function(read)

    def observe(self, route: str, status: int, seconds: float) -> None:
        """One answered request: its count by route and status, and its latency."""
        counter = self._counted.get((route, status))
        if counter is None:
            counter = self._counted[route, status] = self.requests.labels(route, str(status))
        counter.inc()
        timer = self._timed.get(route)
        if timer is None:
            timer = self._timed[route] = self.latency.labels(route)
        timer.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return self._pc.generate_latest(self.registry), self._pc.CONTENT_TYPE_LATEST


class _EngineCollector:
    """Reads the engine's counters when scraped (nothing on the scoring path)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []  # collected lazily; no fixed description needed

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        stats = self.engine.stats
        seconds = CounterMetricFamily(
            "rewardhub_source_seconds", "time spent in each source", labels=["source"]
        )
        for sid, s in sorted(stats.seconds.items()):
            seconds.add_metric([sid], s)
        yield seconds
        outcomes = CounterMetricFamily(
            "rewardhub_outcomes",
            "sample rows per source that are not plain values, by outcome (not_applicable, "
            "failed, unscorable)",
            labels=["source", "outcome"],
        )
        for sid, kinds in sorted(stats.outcomes.items()):
            for label, n in sorted(kinds.items()):
                outcomes.add_metric([sid, label.replace(" ", "_")], n)
        yield outcomes
        hits = CounterMetricFamily(
            "rewardhub_cache_hits", "results reused from a cache", labels=["tier"]
        )
        hits.add_metric(["memory"], stats.memory_hits)
        hits.add_metric(["disk"], stats.disk_hits)
        yield hits
        yield CounterMetricFamily(
            "rewardhub_computed", "source results computed", value=stats.computed
        )
