"""`ReplicaRole`: several `run` replicas on one PostgreSQL database, one of them syncing.

It polls the `Lease` every `poll` seconds (a quarter interval, between 0.2 and 5 s): a
standby takes the lease once the leader's session is gone and syncs at once; the leader
checks it still holds the lease and turns the triggers other replicas sent into syncs.
"""

from __future__ import annotations

import logging
import os
import socket

import anyio

from app.daemon.runner import Sleep, SyncRunner
from app.errors import LeaseLost, StateFileError
from app.state.lease import Lease
from app.sync.report import describe

log = logging.getLogger(__name__)


def poll_seconds(interval: float) -> float:
    return max(0.2, min(interval / 4, 5.0))


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ReplicaRole:
    def __init__(self, lease: Lease, poll: float, *, sleep: Sleep = anyio.sleep) -> None:
        self.lease = lease
        self.poll = poll
        self._sleep = sleep
        self.problem: str | None = "the lease has not been checked yet"

    @property
    def is_leader(self) -> bool:
        return self.lease.is_leader

    def fence(self) -> int:
        """The token a sync opens its store with; never an unfenced store on a replica."""
        if self.lease.token is None:
            raise LeaseLost("not saved: this replica does not hold the lease")
        return self.lease.token

    async def forward(self) -> None:
        await self.lease.notify_leader()

    async def step(self, runner: SyncRunner) -> None:
        """One look at the lease: take it, keep it or lose it, and pass triggers on."""
        was_leader = self.lease.is_leader
        try:
            await self.lease.refresh()
            self.problem = None
        except StateFileError as exc:
            self.problem = describe(exc)
            log.warning("%s", self.problem)
        if self.lease.is_leader and not was_leader:
            log.info("took the lease (fencing token %s): syncing now", self.lease.token)
            runner.trigger()
        elif was_leader and not self.lease.is_leader:
            log.warning("lost the lease: standing by")
        if self.lease.take_triggers() and self.lease.is_leader:
            log.info("a sync was requested through another replica: syncing now")
            runner.trigger()

    async def run(self, runner: SyncRunner) -> None:
        try:
            while True:
                await self.step(runner)
                await self._sleep(self.poll)
        finally:
            with anyio.CancelScope(shield=True):
                await self.lease.aclose()
