"""Synapse's rate limiters in front of the fake homeserver, on an injected clock.

`FakeRateLimiter.mount(router)` adds one respx route that must come before the fake's own
routes (respx tries routes in the order they were added). Each Matrix request draws on the
buckets `app.testing.synapse_limits` names for it; when one of them is empty the request is
answered 429 `M_LIMIT_EXCEEDED` with the `retry_after_ms` Synapse would send, and the fake
homeserver never sees it. Otherwise the request falls through to the fake.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import respx

from app.testing.synapse_limits import ADDRESS, DEFAULT_LIMITS, Bucket, Limit, buckets_of


@dataclass
class _Level:
    actions: float = 0.0
    at: float = 0.0


class FakeRateLimiter:
    def __init__(
        self,
        now: Callable[[], float],
        limits: dict[str, Limit] | None = None,
        *,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        self._now = now
        self.limits = limits or DEFAULT_LIMITS
        self._on_request = on_request
        self._levels: dict[Bucket, _Level] = {}
        self.uses: Counter[Bucket] = Counter()
        # 429 answers by the limiter that refused.
        self.rate_limited: Counter[str] = Counter()
        self.enabled = True

    def mount(self, router: respx.MockRouter) -> None:
        router.route(path__startswith="/_matrix/").mock(side_effect=self._dispatch)

    def _dispatch(self, request: httpx.Request) -> httpx.Response | None:
        if self._on_request is not None:
            self._on_request()
        if not self.enabled:
            return None
        sender = request.headers.get("Authorization", ADDRESS)
        body = json.loads(request.content) if request.content else None
        buckets = buckets_of(request.method, str(request.url), sender, body)
        waits = sorted((self._wait(bucket), bucket[0]) for bucket in buckets)
        if waits and waits[-1][0] > 0:
            wait, limiter = waits[-1]
            self.rate_limited[limiter] += 1
            answer = {
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too Many Requests",
                "retry_after_ms": int(wait * 1000) + 1,
            }
            return httpx.Response(429, json=answer)
        for bucket in buckets:
            self._take(bucket)
        return None

    def _drained(self, bucket: Bucket) -> _Level:
        level = self._levels.setdefault(bucket, _Level(0.0, self._now()))
        limit = self.limits[bucket[0]]
        now = self._now()
        level.actions = max(0.0, level.actions - (now - level.at) * limit.per_second)
        level.at = now
        return level

    def _wait(self, bucket: Bucket) -> float:
        """Seconds until this bucket lets one more action through (0: now)."""
        level = self._drained(bucket)
        limit = self.limits[bucket[0]]
        over = level.actions + 1 - limit.burst
        return over / limit.per_second if over > 0 else 0.0

    def _take(self, bucket: Bucket) -> None:
        self._drained(bucket).actions += 1
        self.uses[bucket] += 1

    @property
    def total_rate_limited(self) -> int:
        return sum(self.rate_limited.values())
