"""How many agents a sync works on at once, which failed agent gets one more try, and what
ends a sync when the homeserver is gone.

`AdaptiveLimiter` admits up to `SYNC_CONCURRENCY` agents, halving that for every step of the
homeserver's `Congestion` level (raised by bursts of 429s) and growing back as the 429s stop.
Fewer agents in flight means fewer requests queued at a limited account, fewer 429s, and no
call waiting so long behind the others that it reaches its deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from app.errors import ConnectionFailed, TransportError
from app.http.calls import JsonApi
from app.http.paths import redact_url
from app.http.server_state import Clock, Congestion

# Never fewer agents than this while rate-limited: one agent at a time would leave the
# limited accounts idle while it waits on its other steps.
MIN_CONCURRENCY = 3


class AdaptiveLimiter:
    def __init__(self, ceiling: int, congestion: Congestion, monotonic: Clock) -> None:
        self.ceiling = ceiling
        self.floor = min(ceiling, MIN_CONCURRENCY)
        self._congestion = congestion
        self._monotonic = monotonic
        self._slots = anyio.CapacityLimiter(ceiling)

    @classmethod
    def for_server(cls, ceiling: int, http: JsonApi) -> AdaptiveLimiter:
        return cls(ceiling, http.server.congestion, http.pacing.monotonic)

    @property
    def limit(self) -> int:
        level = self._congestion.settle(self._monotonic())
        return max(self.floor, self.ceiling >> level)

    def _adjust(self) -> None:
        limit = self.limit
        if self._slots.total_tokens != limit:
            self._slots.total_tokens = limit  # a raise admits waiting agents at once

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the agent slots for the body."""
        self._adjust()
        async with self._slots:
            yield
        self._adjust()


def raise_if_lost(http: JsonApi, url: str) -> None:
    """End the sync with a setup error when the homeserver stopped answering for good."""
    lost_after = http.server.reachability.lost_after
    if lost_after is None:
        return
    raise ConnectionFailed(
        f"cannot reach the homeserver (MATRIX_HOMESERVER_URL={redact_url(url)}): no answer "
        f"for {lost_after:.0f} s, longer than RETRY_BUDGET={http.policy.budget:g} s; the "
        "agents finished before are saved, the others are retried by the next sync",
        maybe_sent=False,
    )


def worth_another_try(error: Exception, http: JsonApi) -> bool:
    """An agent whose step lost its connection (say, a createRoom cut by a restart) is worth one
    more run, unless the homeserver is gone for good."""
    return isinstance(error, TransportError) and not http.server.reachability.lost
