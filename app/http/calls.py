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
from typing import Any, NoReturn
from urllib.parse import urlencode

import anyio

from app.errors import (
    ApiError,
    ConnectionFailed,
    MatrixRateLimited,
    RequestTimeout,
    SyncError,
    TransportError,
)
from app.http.paths import redact_url
from app.http.retry import RETRYABLE_STATUSES, RetryPolicy, is_retryable, parse_retry_after
from app.http.server_state import ServerState
from app.http.transport import Request, Response, Transport

log = logging.getLogger(__name__)

ErrorFactory = Callable[[Response], ApiError]


@dataclass(frozen=True)
class Pacing:
    """The clock, sleep and randomness behind retries, and the wall clock behind schedules
    kept across syncs (`app.sync.backoff`); tests inject instant fakes."""

    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    monotonic: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random.random
    wall: Callable[[], float] = time.time


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


@dataclass
class _Tries:
    """One call's progress: when it began, what went wrong so far."""

    started: float
    failures: int = 0
    waits: int = 0
    outage_began: float | None = None
    out_of_budget: bool = False


@dataclass(frozen=True)
class _Outcome:
    response: Response | None = None
    error: SyncError | None = None
    status: int | None = None

    @property
    def rate_limited(self) -> bool:
        return self.error is not None and _is_rate_limit(self.error, self.status)


class JsonApi:
    """Sends `ApiCall`s to one base URL and returns decoded JSON bodies.

    All clients built on one `JsonApi` share its `ServerState`: what one call learns about the
    server (it is down, it rate-limits this token, it pushes back) every other call acts on.
    """

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
        self.server = ServerState.create(self.pacing.monotonic, self.pacing.sleep)

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

    def _now(self) -> float:
        return self.pacing.monotonic()

    async def _send_with_retries(self, call: ApiCall, request: Request) -> Response:
        tries = _Tries(self._now())
        # Rate limits are per user: the token says whose requests wait together.
        identity = request.headers.get("Authorization", "")
        while True:
            self._refuse_if_lost(call)
            outcome = await self._attempt_in_turn(call, request, identity, tries)
            if outcome.response is not None:
                return outcome.response
            if outcome.rate_limited:
                continue  # this identity is now paused: queue up at its gate
            delay = self._failure_delay(call, outcome, tries)
            if delay is None:
                self._give_up(outcome, tries)
            self._log_retry(call, delay, outcome)
            await self.pacing.sleep(delay)

    async def _attempt_in_turn(
        self, call: ApiCall, request: Request, identity: str, tries: _Tries
    ) -> _Outcome:
        """One attempt in this identity's turn; the holder of its gate waits out 429s in place."""
        async with self.server.gates.turn(identity) as holding:
            while True:
                outcome = await self._attempt(request)
                if not outcome.rate_limited:
                    return outcome
                delay = self._rate_limit_delay(outcome, tries)
                if delay is None:
                    self._give_up(outcome, tries)
                self.server.gates.pause(identity, self._now() + delay)
                if not holding:
                    return outcome
                self._log_retry(call, delay, outcome)
                await self.pacing.sleep(delay)

    async def _attempt(self, request: Request) -> _Outcome:
        reachability = self.server.reachability
        try:
            response = await self.transport.send(request)
        except TransportError as exc:
            reachability.failure(self._now())
            return _Outcome(error=exc)
        if response.status in RETRYABLE_STATUSES:
            reachability.failure(self._now())
        else:
            reachability.answer()
        if response.status < 300:
            return _Outcome(response=response, status=response.status)
        outcome = _Outcome(error=self._error_factory(response), status=response.status)
        if outcome.rate_limited:
            self.server.congestion.rate_limited(self._now())
        return outcome

    def _refuse_if_lost(self, call: ApiCall) -> None:
        lost_after = self.server.reachability.lost_after
        if lost_after is not None:
            raise ConnectionFailed(
                f"{call.method} {self.base_url}{call.path}: not sent, the server has not "
                f"answered for {lost_after:.0f} s (RETRY_BUDGET={self.policy.budget:g} s)",
                maybe_sent=False,
            )

    def _rate_limit_delay(self, outcome: _Outcome, tries: _Tries) -> float | None:
        """The server's wait (or a backoff), as often as it takes within the call's deadline."""
        assert outcome.error is not None
        tries.waits += 1
        delay = _server_requested_wait(outcome.error)
        if delay is None:
            delay = self.policy.backoff(tries.waits, self.pacing.random())
        if self._now() - tries.started + delay > self.policy.deadline:
            return None
        return delay

    def _failure_delay(self, call: ApiCall, outcome: _Outcome, tries: _Tries) -> float | None:
        """Seconds to wait before the next attempt after a failure, or None to give up."""
        assert outcome.error is not None
        if not is_retryable(outcome.error, outcome.status, call.idempotent):
            return None
        tries.failures += 1
        if self.server.reachability.answered:
            # Every retryable failure but a 429 is an outage; this server did answer before.
            return self._outage_delay(tries)
        return self._first_contact_delay(outcome.error, tries)

    def _first_contact_delay(self, error: SyncError, tries: _Tries) -> float | None:
        """A server that never answered in this run is likelier misconfigured than restarting."""
        if tries.failures >= self.policy.max_attempts:
            return None
        unreachable = isinstance(error, TransportError) and (
            not error.maybe_sent or isinstance(error, RequestTimeout)
        )
        if unreachable and tries.failures >= self.policy.max_connect_attempts:
            return None
        delay = _server_requested_wait(error)
        if delay is None:
            delay = self.policy.backoff(tries.failures, self.pacing.random())
        if self._now() - tries.started + delay > self.policy.deadline:
            return None
        return delay

    def _outage_delay(self, tries: _Tries) -> float | None:
        """Keep asking, at least every `probe_interval`, until the outage outlives the budget."""
        now = self._now()
        if tries.outage_began is None:
            tries.outage_began = now
        reachability = self.server.reachability
        age = max(now - tries.outage_began, reachability.outage_age(now))
        remaining = self.policy.budget - age
        if remaining <= 0:
            tries.out_of_budget = True
            reachability.give_up(now, self.policy.budget)
            return None
        delay = self.policy.backoff(tries.failures, self.pacing.random())
        return min(delay, self.policy.probe_interval, remaining)

    def _give_up(self, outcome: _Outcome, tries: _Tries) -> NoReturn:
        error = outcome.error
        assert error is not None
        if tries.out_of_budget and isinstance(error, TransportError):
            note = f"{error}; no answer for {self.policy.budget:g} s (RETRY_BUDGET)"
            raise type(error)(note, maybe_sent=error.maybe_sent) from error
        raise error

    def _log_retry(self, call: ApiCall, delay: float, outcome: _Outcome) -> None:
        assert outcome.error is not None
        log.info(
            "retrying %s %s in %.2fs after %s", call.method, call.path, delay, _brief(outcome.error)
        )


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


def is_redirect(status: int) -> bool:
    """Redirects are answers we cannot use: never followed (a TLS proxy may send http://)."""
    return 300 <= status < 400


def redirect_target(response: Response) -> str:
    """Where a redirect points, without user info or query (either may carry secrets)."""
    location = response.header("Location")
    return redact_url(location) if location else "(no location)"


def retry_after_seconds(response: Response) -> float | None:
    """The response's `Retry-After` header in seconds, if it has a usable one."""
    return parse_retry_after(response.header("Retry-After"))
