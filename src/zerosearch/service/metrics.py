"""The search service's Prometheus metrics, kept in a ``prometheus_client`` registry of their own.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (not the process-global one), so tests
and benchmarks can run several apps in one process. ``GET /metrics`` returns :meth:`ServiceMetrics.render`,
the registry in Prometheus' text exposition format as ``prometheus_client`` writes it. Requests are counted
from the event loop and engine batches from the worker thread; ``prometheus_client`` metrics are thread-safe.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

#: The ``Content-Type`` of ``GET /metrics`` (Prometheus text format 0.0.4).
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """All metrics of one app instance, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("zerosearch_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=r)
        self.errors = Counter("zerosearch_request_errors", "failed requests by route and error kind",
                              ["route", "kind"], registry=r)
        self.latency = Histogram("zerosearch_request_latency_seconds", "HTTP request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.queries = Counter("zerosearch_queries", "queries answered, by route", ["route"], registry=r)
        self.modes = Counter("zerosearch_results", "results by simulated draw (useful/noisy/none)", ["mode"],
                             registry=r)
        self.cache = Counter("zerosearch_cache", "cache lookups by outcome (hit/miss/bypass)", ["outcome"],
                             registry=r)
        self.batch_size = Histogram("zerosearch_engine_batch_size", "queries per engine.search call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.engine_seconds = Histogram("zerosearch_engine_call_seconds", "duration of one engine.search call",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.engine_failures = Counter("zerosearch_engine_failures", "failed engine.search attempts by exception type",
                                       ["kind"], registry=r)
        self.inflight = Gauge("zerosearch_inflight_requests", "requests being served now", registry=r)
        self.ready = Gauge("zerosearch_ready", "1 when the last readiness probe found the backend answering",
                           registry=r)
        self.noise_probability = Histogram(
            "zerosearch_request_noise_probability", "noise probability p requests asked for (given or from step)",
            buckets=(0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0), registry=r)

    def record_request(self, route: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request."""
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def record_error(self, route: str, kind: str) -> None:
        """Count one request that ended in an error response."""
        self.errors.labels(route=route, kind=kind).inc()

    def record_results(self, route: str, modes: list[str | None]) -> None:
        """Count answered queries and their useful/noisy draws."""
        self.queries.labels(route=route).inc(len(modes))
        for mode in modes:
            self.modes.labels(mode=mode or "none").inc()

    def record_noise_probability(self, p: float | None) -> None:
        """Record the p one request resolved to (requests that leave it to the engine are not counted)."""
        if p is not None:
            self.noise_probability.observe(p)

    def record_cache(self, outcome: str, n: int = 1) -> None:
        """Count cache lookups: ``hit``, ``miss`` or ``bypass`` (caller disallowed the cache)."""
        if n:
            self.cache.labels(outcome=outcome).inc(n)

    def record_batch(self, size: int, seconds: float) -> None:
        """Count one engine call of ``size`` queries."""
        self.batch_size.observe(size)
        self.engine_seconds.observe(seconds)

    def record_engine_failure(self, kind: str) -> None:
        """Count one failed engine attempt (before or after retries)."""
        self.engine_failures.labels(kind=kind).inc()

    def render(self) -> str:
        """The whole registry in Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry).decode("utf-8")
