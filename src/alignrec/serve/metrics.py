"""Prometheus metrics of the service, in a registry of its own (one per app, so tests don't collide).

Requests are counted by a small pure-ASGI middleware keyed by the route's
template (``/v1/users/{user_id}/recommendations``, not every user's path), which
keeps label cardinality bounded and costs a few microseconds a request.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        GCCollector(registry=self.registry)
        ProcessCollector(registry=self.registry)
        self.requests = Counter("alignrec_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("alignrec_http_request_duration_seconds", "Time to answer, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.recommendations = Counter("alignrec_recommendations", "Lists served, by endpoint and source",
                                       ["endpoint", "source"], registry=self.registry)
        self.store_errors = Counter("alignrec_store_errors", "Store lookups that failed (answered with the fallback)",
                                    registry=self.registry)
        self.live_failures = Counter("alignrec_live_failures", "Live requests answered with the fallback, by reason",
                                     ["reason"], registry=self.registry)
        self.reloads = Counter("alignrec_snapshot_reloads", "Admin reloads that switched the snapshot",
                               registry=self.registry)
        self.snapshot = Gauge("alignrec_snapshot_info", "1 for the snapshot being served",
                              ["snapshot"], registry=self.registry)

        # labels() validates and locks on every call; the children, once made, are reused.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._served_children: dict[tuple[str, str], Any] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._request_children.get((route, method, status))
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def served(self, endpoint: str, source: str) -> None:
        child = self._served_children.get((endpoint, source))
        if child is None:
            child = self._served_children[(endpoint, source)] = self.recommendations.labels(endpoint, source)
        child.inc()

    def serving(self, previous: str | None, snapshot: str | None) -> None:
        if previous is not None:
            with contextlib.suppress(KeyError):
                self.snapshot.remove(previous)
        if snapshot is not None:
            self.snapshot.labels(snapshot).set(1)


class MetricsMiddleware:
    """Counts every HTTP response and observes its latency under the matched route's template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route: Any = scope.get("route")
            self.metrics.request(getattr(route, "path", "unmatched"), scope["method"], status,
                                 time.perf_counter() - started)
