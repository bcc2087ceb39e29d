"""The sync loop of `run`: on its interval and on demand, never two at once, never crashing.

A trigger during a sync queues exactly one more (any number of triggers collapse into it).
A sync that fails to start (homeserver or Letta down, a setup error) is retried after a
doubling delay, capped; `/readyz` reports why until a sync succeeds again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import anyio

from app.daemon.metrics import SyncMetrics
from app.daemon.settings import ServiceSettings
from app.errors import SyncLocked
from app.sync.report import SyncReport, describe

log = logging.getLogger(__name__)

# One sync: its report, and how many agents are in order after it.
SyncOnce = Callable[[], Awaitable[tuple[SyncReport, int]]]
Sleep = Callable[[float], Awaitable[None]]


class Role(Protocol):
    """Whether this replica leads (see app.daemon.replicas); a lone daemon always does."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def heartbeat_age(self) -> float | None:
        """Seconds since the leader renewed the lease, as last seen."""
        ...

    @property
    def leader_unresponsive(self) -> str | None:
        """Why the leader looks gone (its heartbeat past the time to live), or None."""
        ...

    async def forward(self) -> None:
        """Pass a sync request to the leader."""
        ...


@dataclass(frozen=True)
class Readiness:
    ready: bool
    role: str
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"ready": self.ready, "role": self.role, "reason": self.reason}


class SyncRunner:
    def __init__(
        self,
        sync_once: SyncOnce,
        settings: ServiceSettings,
        metrics: SyncMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = anyio.sleep,
        role: Role | None = None,
    ) -> None:
        self._sync_once = sync_once
        self.role = role
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._wake = anyio.Event()
        self._pending = False
        self._stopping = False
        self.running = False
        self.failures_in_a_row = 0
        self.problem: str | None = "no sync has finished yet"
        self.last_good: float | None = None
        self.syncs_started = self.syncs_finished = 0
        self._finished = anyio.Event()

    def trigger(self) -> None:
        """Ask for a sync now (the webhook); during a sync, one more follows it."""
        self._pending = True
        self._wake.set()

    async def request_sync(self) -> bool:
        """The webhook: sync here when leading, else forward to the leader (True)."""
        if self.role is not None and not self.role.is_leader:
            await self.role.forward()
            return True
        self.trigger()
        return False

    @property
    def leading(self) -> bool:
        return self.role is None or self.role.is_leader

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def readiness(self) -> Readiness:
        if self.role is not None and not self.role.is_leader:
            problem = self.role.problem or self.role.leader_unresponsive
            if problem is not None:
                return Readiness(False, "standby", problem)
            age = self.role.heartbeat_age
            renewed = "" if age is None else f" (it renewed the lease {age:.1f} s ago)"
            return Readiness(True, "standby", f"another replica holds the lease and syncs{renewed}")
        stale_after = 3 * self.settings.interval
        fresh = self.last_good is not None and self._clock() - self.last_good <= stale_after
        if self.problem is None and fresh:
            return Readiness(True, "leader", "last sync finished without a setup error")
        if self.problem is None:
            return Readiness(False, "leader", f"no successful sync for over {stale_after:g} s")
        return Readiness(False, "leader", self.problem)

    def next_delay(self) -> float:
        if self.failures_in_a_row == 0:
            return self.settings.interval
        backoff: float = self.settings.interval * 2 ** (self.failures_in_a_row - 1)
        return min(backoff, self.settings.max_backoff)

    async def run(self) -> None:
        """Sync, wait for the interval or a trigger, repeat; returns once `stop()` is called."""
        while not self._stopping:
            self._pending = False
            if self.leading:
                await self.sync_now()
            if not self._pending:
                await self._wait(self.next_delay())

    async def _wait(self, seconds: float) -> None:
        self._wake = anyio.Event()
        if self._pending or self._stopping:
            return
        async with anyio.create_task_group() as group:

            async def timer() -> None:
                await self._sleep(seconds)
                group.cancel_scope.cancel()

            group.start_soon(timer)
            await self._wake.wait()
            group.cancel_scope.cancel()

    async def sync_now(self) -> None:
        self.running = True
        self.syncs_started += 1
        started, sent_before = self._clock(), dict(self.metrics.sent)
        try:
            report, in_order = await self._sync_once()
        except SyncLocked as exc:
            self._failed(f"waiting for the lock: {exc}", started)
        except Exception as exc:  # a setup error must never end the service
            log.error("sync failed: %s", describe(exc))
            self._failed(describe(exc), started)
        else:
            self.metrics.sync_finished(self._clock() - started, report, in_order)
            log_sync(report, self._clock() - started, self.metrics.sent, sent_before)
            if report.letta_error:
                self._failed(f"Letta: {report.letta_error}", started, observed=True)
            else:
                self.failures_in_a_row, self.problem = 0, None
                self.last_good = self._clock()
        finally:
            self.running = False
            self.syncs_finished += 1
            self._finished.set()
            self._finished = anyio.Event()

    async def wait_for_syncs(self, count: int) -> None:
        """Return once `count` syncs have finished (for tests and tools that watch)."""
        while self.syncs_finished < count:
            await self._finished.wait()

    def _failed(self, reason: str, started: float, *, observed: bool = False) -> None:
        if not observed:
            self.metrics.sync_errored(self._clock() - started)
        self.failures_in_a_row += 1
        self.problem = reason
        log.warning("next attempt in %g s: %s", self.next_delay(), reason)


def log_sync(
    report: SyncReport, seconds: float, sent: Mapping[str, int], before: Mapping[str, int]
) -> None:
    """One INFO line per sync, then a WARNING per agent that failed; agents held back after
    a failure no retry fixes (not tried, no request) share one INFO line."""
    created = set(report.users_created) | set(report.rooms_created)
    matrix, letta = (sent.get(name, 0) - before.get(name, 0) for name in ("matrix", "letta"))
    tried = [failure for failure in report.failures if failure.next_try is None]
    held = [failure for failure in report.failures if failure.next_try is not None]
    log.info(
        "sync done in %.1f s: %d agents seen, %d created, %d renamed, %d repaired, %d migrated, "
        "%d failed, %d held back; %d Matrix and %d Letta requests%s",
        seconds,
        report.agents_seen,
        len(created),
        len(report.renamed),
        len(report.repaired),
        len(report.migrated),
        len(tried),
        len(held),
        matrix,
        letta,
        f"; Letta error: {report.letta_error}" if report.letta_error else "",
    )
    for failure in tried:
        log.warning(
            "agent %s (%s) failed at %s: %s",
            failure.agent_id,
            failure.agent_name,
            failure.step,
            failure.reason,
        )
    if held:
        agents = ", ".join(f"{f.agent_id} (until {f.next_try})" for f in held)
        log.info("held back after a failure no retry fixes: %s", agents)
