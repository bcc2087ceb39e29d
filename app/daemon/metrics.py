"""Prometheus metrics of the service, in a registry of its own (no process-wide globals).

Requests are counted by a transport wrapper, so every Matrix and Letta call shows up by
service, kind (the API path with ids taken out) and status, and so do rate-limit answers.
"""

from __future__ import annotations

import re
import time
from collections import Counter as Tally
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from app.http.transport import Request, Response, Transport
from app.sync.report import SyncReport

PREFIX = "letta_matrix_sync"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_HEARTBEAT_AGE_DESCRIPTION = (
    "Seconds since the leader renewed the lease, as this replica last saw it"
)
# A path segment that carries an id: Matrix sigils, percent-encoded ones, Letta's agent-...
_ID_SEGMENT = re.compile(r"^(%21|%40|%23|%24|!|@|#|\$|agent-|[0-9a-f-]{16,}$)|%3A", re.I)


class SyncMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.duration = Histogram(
            f"{PREFIX}_sync_duration_seconds",
            "Wall time of one sync",  # pragma: no mutate
            registry=r,
            buckets=_BUCKETS,
        )
        self.syncs = Counter(
            f"{PREFIX}_syncs",
            "Syncs run, by outcome (ok, failures, error)",  # pragma: no mutate
            ["outcome"],
            registry=r,
        )
        self.in_order = Gauge(
            f"{PREFIX}_agents_in_order",
            "Agents in order after the last sync",  # pragma: no mutate
            registry=r,
        )
        self.failed = Gauge(
            f"{PREFIX}_agents_failed",
            "Agents that failed in the last sync",  # pragma: no mutate
            registry=r,
        )
        self.requests = Counter(
            f"{PREFIX}_requests",
            "HTTP requests to Matrix and Letta",  # pragma: no mutate
            ["service", "kind", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limit_waits",
            "Answers 429 (each makes the client wait)",  # pragma: no mutate
            ["service"],
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time the last sync without a setup error finished",  # pragma: no mutate
            registry=r,
        )
        # Requests by service since start, for the per-sync log line.
        self.sent: Tally[str] = Tally()
        self.is_leader = Gauge(
            f"{PREFIX}_leader",
            "1 while this replica is the one that syncs",  # pragma: no mutate
            registry=r,
        )
        self.heartbeat_age = Gauge(
            f"{PREFIX}_lease_heartbeat_age_seconds",
            _HEARTBEAT_AGE_DESCRIPTION,
            registry=r,
        )

    def leading(self, leader: bool, heartbeat_age: float | None) -> None:
        self.is_leader.set(1 if leader else 0)
        if heartbeat_age is not None:
            self.heartbeat_age.set(heartbeat_age)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def sync_finished(self, seconds: float, report: SyncReport, in_order: int) -> None:
        self.duration.observe(seconds)
        self.syncs.labels("ok" if report.ok else "failures").inc()
        self.in_order.set(in_order)
        self.failed.set(len(report.failures))
        if report.letta_error is None:
            self.last_success.set(time.time())

    def sync_errored(self, seconds: float) -> None:
        self.duration.observe(seconds)
        self.syncs.labels("error").inc()

    def request(self, request: Request, status: str) -> None:
        service, kind = classify(request)
        self.sent[service] += 1
        self.requests.labels(service, kind, status).inc()
        if status == "429":
            self.rate_limited.labels(service).inc()


def classify(request: Request) -> tuple[str, str]:
    """("matrix" | "letta", "GET /_matrix/client/v3/rooms/{id}/state") for a request."""
    path = urlsplit(request.url).path
    service = "matrix" if "/_matrix/" in path or "/_synapse/" in path else "letta"
    parts = ["{id}" if _ID_SEGMENT.search(part) else part for part in path.split("/")]
    return service, f"{request.method} {'/'.join(parts)}"


class CountingTransport:
    """A transport that counts what passes through it, for /metrics."""

    def __init__(self, inner: Transport, metrics: SyncMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def send(self, request: Request) -> Response:
        try:
            response = await self._inner.send(request)
        except Exception:
            self._metrics.request(request, "error")
            raise
        self._metrics.request(request, str(response.status))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
