"""`ReplicaRole`: several `run` replicas on one PostgreSQL database, one of them syncing.

It looks at the `Lease` every `poll` seconds (a quarter interval, between 0.2 and 5 s, and
at most a third of the lease's time to live, so the leader renews it several times within
it): a standby takes the lease once the leader's session is gone or its heartbeat is older
than the time to live, and syncs at once; the leader renews the lease and turns the triggers
other replicas sent into syncs.

The leader changes nothing on the homeserver (no user, no room, no state, no message) unless
its lease is surely still valid (`LeaderOnlyWrites`): a leader woken from a pause finds its
deadline past, steps down, and says so, before any such request leaves.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import anyio

from app.daemon.metrics import SyncMetrics
from app.daemon.runner import Sleep, SyncRunner
from app.errors import LeaseLost, StateFileError
from app.http.transport import Request, Response, Transport
from app.state.lease import Lease
from app.state.postgres import process_identity
from app.sync.report import describe

log = logging.getLogger(__name__)


def poll_seconds(interval: float, ttl: float = float("inf")) -> float:
    return min(max(0.2, min(interval / 4, 5.0)), ttl / 3)


def default_holder() -> str:
    return process_identity()


class ReplicaRole:
    def __init__(
        self,
        lease: Lease,
        poll: float,
        *,
        sleep: Sleep = anyio.sleep,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self.lease = lease
        self.poll = poll
        self._sleep = sleep
        self._metrics = metrics or SyncMetrics()
        self.problem: str | None = "the lease has not been checked yet"
        self._leading = False  # as last announced in the log

    @property
    def is_leader(self) -> bool:
        return self.lease.is_leader

    @property
    def heartbeat_age(self) -> float | None:
        """Seconds since the leader renewed the lease, as last seen (0 on the leader)."""
        return self.lease.leader_age

    @property
    def leader_unresponsive(self) -> str | None:
        """Why the leader looks gone, seen from a standby; None while it renews in time."""
        age, ttl = self.lease.leader_age, self.lease.leader_ttl
        if self.is_leader or age is None or age <= ttl:
            return None
        return (
            f"the leader ({self.lease.leader}) last renewed the lease {age:.1f} s ago, past "
            f"its time to live of {ttl:g} s: it is unresponsive, and no replica leads until "
            "one takes over"
        )

    def fence(self) -> int:
        """The token a sync opens its store with; never an unfenced store on a replica."""
        if self.lease.token is None:
            raise LeaseLost("not saved: this replica does not hold the lease")
        return self.lease.token

    def before_write(self) -> None:
        """Called before each request that changes the homeserver."""
        if self.lease.valid():
            return
        self.lease.step_down()
        self._metrics.leading(False, None)
        self._stood_down("its lease may have lapsed (no renewal within its time to live)")
        raise LeaseLost("not sent: this replica's lease may have lapsed; another one leads")

    async def forward(self) -> None:
        await self.lease.notify_leader()

    async def step(self, runner: SyncRunner) -> None:
        """One look at the lease: take it, keep it or lose it, and pass triggers on."""
        try:
            await self.lease.refresh()
            self.problem = None
        except StateFileError as exc:
            self.problem = describe(exc)
            log.warning("%s", self.problem)
        if self.lease.is_leader and not self._leading:
            self._leading = True
            log.info("took the lease (fencing token %s): syncing now", self.lease.token)
            runner.trigger()
        elif self._leading and not self.lease.is_leader:
            held = "another replica holds the lease now"
            self._stood_down(
                f"the database connection was lost ({self.problem})" if self.problem else held
            )
        if self.lease.take_triggers() and self.lease.is_leader:
            log.info("a sync was requested through another replica: syncing now")
            runner.trigger()
        self._metrics.leading(self.lease.is_leader, self.lease.leader_age)

    def _stood_down(self, why: str) -> None:
        if self._leading:
            self._leading = False
            log.warning("stepping down to standby: %s", why)

    async def run(self, runner: SyncRunner) -> None:
        try:
            while True:
                await self.step(runner)
                await self._sleep(self.poll)
        finally:
            with anyio.CancelScope(shield=True):
                await self.lease.aclose()


class LeaderOnlyWrites:
    """A transport that lets a request that changes the homeserver leave only while the
    replica's lease is surely valid (`ReplicaRole.before_write`); reads always go."""

    def __init__(self, inner: Transport, role: ReplicaRole) -> None:
        self._inner = inner
        self._role = role

    async def send(self, request: Request) -> Response:
        if request.method != "GET" and "/_matrix/" in urlsplit(request.url).path:
            self._role.before_write()
        return await self._inner.send(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
