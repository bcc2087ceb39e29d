"""When and how long to wait before repeating a request. Pure: no I/O, no clock of its own."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timezone

from app.errors import MatrixRateLimited, SyncError, TlsFailed, TransportError

RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and jitter.

    Three bounds, for three kinds of trouble:
    - a server that has not answered yet in this run (most likely a wrong URL) gets
      `max_attempts` tries, or `max_connect_attempts` when connections fail;
    - a server that answered before and now does not (a restart: refused connections, gateway
      errors, timeouts) is tried again for `budget` seconds (`RETRY_BUDGET`), at least every
      `probe_interval` seconds so its return is noticed soon;
    - a rate limit is waited out as often as it takes within `deadline` seconds for the call.
    """

    max_attempts: int = 5
    max_connect_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    deadline: float = 120.0
    jitter: float = 0.25
    budget: float = 30.0
    probe_interval: float = 4.0

    def backoff(self, attempt: int, random_fraction: float) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1); jitter spreads clients."""
        exponent = min(attempt - 1, 64)  # 2**64 already exceeds any sane cap
        raw = (
            self.base_delay * 2.0**exponent * (1 - self.jitter + 2 * self.jitter * random_fraction)
        )
        return min(self.max_delay, raw)


NO_RETRY = RetryPolicy(max_attempts=1, max_connect_attempts=1, deadline=0.0, budget=0.0)


def is_retryable(error: SyncError, status: int | None, idempotent: bool) -> bool:
    """Whether repeating the request can help and cannot do harm.

    A rate limit is always retried (the server did nothing). A gateway error or a lost response
    is retried only for idempotent requests, since the first attempt may have taken effect.
    """
    if isinstance(error, MatrixRateLimited) or status == 429:
        return True
    if isinstance(error, TlsFailed):
        return False  # a mismatch, not an outage: the next handshake fails the same way
    if isinstance(error, TransportError):
        return idempotent or not error.maybe_sent
    return status in RETRYABLE_STATUSES and idempotent


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    reference = now or datetime.now(timezone.utc)
    return max(0.0, (when - reference).total_seconds())
