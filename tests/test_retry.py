"""RetryPolicy, is_retryable and parse_retry_after: pure functions, no clock of their own."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import (
    ConnectionFailed,
    LettaError,
    MalformedResponse,
    MatrixError,
    MatrixForbidden,
    MatrixRateLimited,
    RequestTimeout,
    SyncError,
)
from app.http.retry import NO_RETRY, RetryPolicy, is_retryable, parse_retry_after

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)


def test_backoff_doubles_from_base_without_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, jitter=0.0)
    assert [policy.backoff(attempt, 0.9) for attempt in range(1, 9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]


def test_backoff_jitter_extremes() -> None:
    policy = RetryPolicy(base_delay=2.0, jitter=0.25)
    assert policy.backoff(1, 0.0) == pytest.approx(1.5)
    assert policy.backoff(1, 0.5) == pytest.approx(2.0)
    assert policy.backoff(1, 1.0) == pytest.approx(2.5)


def test_defaults_and_no_retry() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (5, 0.5, 30.0)
    assert (policy.deadline, policy.jitter) == (120.0, 0.25)
    assert NO_RETRY.max_attempts == 1


@given(
    attempt=st.integers(min_value=1, max_value=60),
    fraction=st.floats(min_value=0.0, max_value=1.0),
    base=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=100.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_backoff_bounds(
    attempt: int, fraction: float, base: float, cap: float, jitter: float
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap, jitter=jitter)
    raw = min(cap, base * 2.0 ** (attempt - 1))
    delay = policy.backoff(attempt, fraction)
    assert delay >= 0.0
    assert raw * (1 - jitter) - 1e-9 <= delay <= raw * (1 + jitter) + 1e-9
    # The cap holds up to the jitter spread.
    assert delay <= cap * (1 + jitter) + 1e-9


@given(attempt=st.integers(min_value=1, max_value=59), fraction=st.floats(0.0, 1.0))
def test_backoff_never_shrinks_with_attempts(attempt: int, fraction: float) -> None:
    policy = RetryPolicy()
    assert policy.backoff(attempt + 1, fraction) >= policy.backoff(attempt, fraction)


def test_backoff_huge_attempt_is_capped() -> None:
    assert RetryPolicy(jitter=0.0).backoff(2000, 0.5) == 30.0


@pytest.mark.parametrize(
    ("error", "status", "idempotent", "expected"),
    [
        (MatrixRateLimited(429, "M_LIMIT_EXCEEDED", "slow"), 429, False, True),
        (MatrixRateLimited(400, "M_LIMIT_EXCEEDED", "slow"), 400, False, True),
        (LettaError(429, "slow"), 429, False, True),
        (MatrixError(502, None, "bad gateway"), 502, True, True),
        (MatrixError(503, None, "unavailable"), 503, True, True),
        (LettaError(504, "timeout"), 504, True, True),
        (MatrixError(503, None, "unavailable"), 503, False, False),
        (MatrixError(500, "M_UNKNOWN", "boom"), 500, True, False),
        (MatrixError(400, "M_BAD_JSON", "bad"), 400, True, False),
        (MatrixForbidden(403, "M_FORBIDDEN", "no"), 403, True, False),
        (MalformedResponse(200, "not JSON"), 200, True, False),
        (ConnectionFailed("refused", maybe_sent=False), None, False, True),
        (ConnectionFailed("reset"), None, False, False),
        (ConnectionFailed("reset"), None, True, True),
        (RequestTimeout("connect", maybe_sent=False), None, False, True),
        (RequestTimeout("read"), None, False, False),
        (RequestTimeout("read"), None, True, True),
    ],
)
def test_is_retryable(
    error: SyncError, status: int | None, idempotent: bool, expected: bool
) -> None:
    assert is_retryable(error, status, idempotent) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("  7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:30:00 +0000", 120.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:10", 10.0),
        ("soon", None),
        ("Wed, 99 Foo 2015", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_date_defaults_to_current_time() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert 0.0 < (parse_retry_after("Fri, 01 Jan 9999 00:00:00 GMT") or 0.0)
