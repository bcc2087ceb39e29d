"""JSON-over-HTTP calls with retries, shared by the Matrix and Letta clients.

The one place that decides whether to repeat a request and how long to wait; the clients only
say what to send and how to turn an error response into an exception.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio

from app.errors import ApiError, MatrixRateLimited, RequestTimeout, SyncError, TransportError
from app.retry import RetryPolicy, is_retryable, parse_retry_after
from app.transport import Request, Response, Transport

log = logging.getLogger(__name__)

ErrorFactory = Callable[[Response], ApiError]


@dataclass(frozen=True)
class Pacing:
    """The clock, sleep and randomness behind retries; tests inject instant fakes."""

    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    monotonic: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random.random


@dataclass(frozen=True)
class ApiCall:
    """One API request as a plain value: built without I/O, so tests check builders directly.

    `path` is already percent-encoded; `query` values are encoded when the URL is built.
    """

    method: str
    path: str
    # Bodies carry passwords (login, register): keep them out of reprs and tracebacks.
    body: Any = field(default=None, repr=False)
    query: dict[str, str] = field(default_factory=dict, repr=False)
    idempotent: bool = True
    authenticated: bool = True


class JsonApi:
    """Sends `ApiCall`s to one base URL and returns decoded JSON bodies."""

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        error_factory: ErrorFactory,
        *,
        policy: RetryPolicy | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self._error_factory = error_factory
        self.policy = policy or RetryPolicy()
        self.pacing = pacing or Pacing()
        self._paused_until = 0.0

    def url_for(self, call: ApiCall) -> str:
        query = f"?{urlencode(call.query)}" if call.query else ""
        return f"{self.base_url}{call.path}{query}"

    async def call(self, call: ApiCall, token: str | None = None) -> Any:
        """Send `call`, retrying per the policy; raise a typed `SyncError` on failure."""
        response = await self._send_with_retries(call, self._request_for(call, token))
        if not response.content.strip():
            return {}
        return response.json()

    def _request_for(self, call: ApiCall, token: str | None) -> Request:
        headers = {"Accept": "application/json"}
        if token is not None and call.authenticated:
            headers["Authorization"] = f"Bearer {token}"
        return Request(call.method, self.url_for(call), headers, call.body)

    async def _send_with_retries(self, call: ApiCall, request: Request) -> Response:
        started = self.pacing.monotonic()
        failures = waits = 0
        while True:
            await self._respect_rate_limit_pause()
            error, status, response = await self._attempt(request)
            if error is None and response is not None:
                return response
            assert error is not None
            rate_limited = _is_rate_limit(error, status)
            # A 429 says "not yet", not "failed": it has its own, larger bound.
            waits, failures = (waits + 1, failures) if rate_limited else (waits, failures + 1)
            delay = self._delay_before_retry(call, error, status, (failures, waits), started)
            if delay is None:
                raise error
            if rate_limited:
                # Every caller of this server waits, instead of each finding the limit alone.
                self._paused_until = max(self._paused_until, self.pacing.monotonic() + delay)
            log.info(
                "retrying %s %s in %.2fs after %s", call.method, call.path, delay, _brief(error)
            )
            await self.pacing.sleep(delay)

    async def _respect_rate_limit_pause(self) -> None:
        wait = self._paused_until - self.pacing.monotonic()
        if wait > 0:
            await self.pacing.sleep(wait)

    async def _attempt(
        self, request: Request
    ) -> tuple[SyncError | None, int | None, Response | None]:
        try:
            response = await self.transport.send(request)
        except TransportError as exc:
            return exc, None, None
        if response.status >= 400:
            return self._error_factory(response), response.status, None
        return None, response.status, response

    def _delay_before_retry(
        self,
        call: ApiCall,
        error: SyncError,
        status: int | None,
        counts: tuple[int, int],
        started: float,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        `counts` is (failed attempts, rate-limited attempts) so far.
        """
        failures, waits = counts
        if not is_retryable(error, status, call.idempotent):
            return None
        rate_limited = _is_rate_limit(error, status)
        if rate_limited and waits > self.policy.max_rate_limit_waits:
            return None
        if not rate_limited and failures >= self.policy.max_attempts:
            return None
        attempt = waits if rate_limited else failures
        # A server that refuses, or does not answer in time, is usually down, not busy.
        unreachable = isinstance(error, TransportError) and (
            not error.maybe_sent or isinstance(error, RequestTimeout)
        )
        if unreachable and attempt >= self.policy.max_connect_attempts:
            return None
        delay = self.policy.backoff(attempt, self.pacing.random())
        server_wait = _server_requested_wait(error)
        if server_wait is not None:
            delay = server_wait
        elapsed = self.pacing.monotonic() - started
        if elapsed + delay > self.policy.deadline:
            return None
        return delay


def _is_rate_limit(error: SyncError, status: int | None) -> bool:
    return status == 429 or isinstance(error, MatrixRateLimited)


def _server_requested_wait(error: SyncError) -> float | None:
    retry_after_ms = getattr(error, "retry_after_ms", None)
    if isinstance(retry_after_ms, int):
        return retry_after_ms / 1000
    return getattr(error, "retry_after", None)


def _brief(error: SyncError) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status}"
    return type(error).__name__


def retry_after_seconds(response: Response) -> float | None:
    """The response's `Retry-After` header in seconds, if it has a usable one."""
    return parse_retry_after(response.header("Retry-After"))
