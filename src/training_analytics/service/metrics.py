"""Prometheus metrics: requests by route and status, latency histograms, events ingested by
outcome, store errors. Under ``serve`` every worker writes to a shared directory
(``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multiprocess mode), so whichever worker
answers ``/metrics`` reports all of them."""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_UNMATCHED = "<unmatched>"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "training_analytics_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "training_analytics_http_request_duration_seconds",
            "Time from the request's arrival to its last response byte",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "training_analytics_events_ingested",
            "Events received by POST /events, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.xapi_statements = Counter(
            "training_analytics_xapi_statements",
            "xAPI statements received, by outcome (new, duplicate, ignored, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "training_analytics_store_errors",
            "Requests that failed because of the store, by error",
            ["error"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class MeasureRequests:
    """Counts and times every HTTP request by its route template (never the raw path: ids would
    make the label set grow without bound)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = route.path if isinstance(route, Route) else _UNMATCHED
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
