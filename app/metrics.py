"""Prometheus metrics (prometheus-client, one registry per app) and the middleware counting
requests.

    GET /metrics  →  charlstm_http_requests_total{route="/api/generate",method="POST",status="200"}
    3 ...

Besides the server's own series: every request's duration by route template (a stream's whole life,
hence buckets up to minutes), and the standard process_*, python_gc_* and python_info series of
prometheus-client's collectors, as its default registry would show. Per-char latency is observed
once per finished sequence, as its mean time between chars after the first, so a 5,000-char stream
costs one observation, not 5,000.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("app.access")

TTFC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DURATION_BUCKETS = (
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
    300.0,
    1800.0,
)
CHAR_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # stateless readers of the process
        for collector in (
            PROCESS_COLLECTOR,
            GC_COLLECTOR,
            PLATFORM_COLLECTOR,
        ):
            r.register(collector)
        self.durations = Histogram(
            "charlstm_http_request_duration_seconds",
            "HTTP request duration by route template and method, to the end of the response "
            "(streams included)",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "charlstm_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.rejections = Counter(
            "charlstm_rejected_requests", "Requests refused, by reason", ["reason"], registry=r
        )
        self.chars = Counter(
            "charlstm_generated_chars", "Chars generated and sent", ["model"], registry=r
        )
        self.sequences = Counter(
            "charlstm_sequences",
            "Finished sequences by finish_reason",
            ["model", "finish_reason"],
            registry=r,
        )
        self.active = Gauge(
            "charlstm_active_sequences", "Sequences admitted and not yet finished", registry=r
        )
        self.queued = Gauge(
            "charlstm_queued_sequences", "Sequences submitted, waiting for the engine", registry=r
        )
        self.generating = Gauge(
            "charlstm_engine_sequences", "Sequences the engines are stepping now", registry=r
        )
        self.ttfc = Histogram(
            "charlstm_time_to_first_char_seconds",
            "Admission to the first char sent",
            ["model"],
            buckets=TTFC_BUCKETS,
            registry=r,
        )
        self.char_latency = Histogram(
            "charlstm_char_latency_seconds",
            "Mean time per char after the first, per sequence",
            ["model"],
            buckets=CHAR_BUCKETS,
            registry=r,
        )

    def watch(
        self,
        active: Callable[[], float],
        queued: Callable[[], float],
        generating: Callable[[], float],
    ) -> None:
        """Read the gauges at scrape time from the live counters."""
        self.active.set_function(active)
        self.queued.set_function(queued)
        self.generating.set_function(generating)

    def rejected(self, reason: str) -> None:
        self.rejections.labels(reason).inc()

    def finished(
        self, model: str, finish_reason: str, chars: int, ttfc: float | None, span: float | None
    ) -> None:
        """One sequence ended: `span` = seconds from its first char to its last."""
        self.sequences.labels(model, finish_reason).inc()
        if chars:
            self.chars.labels(model).inc(chars)
        if ttfc is not None:
            self.ttfc.labels(model).observe(ttfc)
        if span is not None and chars > 1:
            self.char_latency.labels(model).observe(span / (chars - 1))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware: count each HTTP request by route template and status; log it without its
    body."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before starting a response
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # The template (`/api/generate`), never the raw path: labels must stay few.
            label = getattr(route, "path", None) or "unmatched"
            took = time.perf_counter() - start
            self.metrics.requests.labels(label, scope["method"], str(status)).inc()
            self.metrics.durations.labels(label, scope["method"]).observe(took)
            access_log.debug("%s %s %d %.1fms", scope["method"], label, status, 1000 * took)
