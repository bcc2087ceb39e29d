"""`SyncDaemon`: the HTTP side and the sync loop in one task group, until SIGTERM/SIGINT.

On a signal no new sync starts; one in flight gets `shutdown_timeout` seconds to finish its
agent steps, then is cancelled (everything acknowledged is already saved); the store's locks
are released as its `SyncService` closes, and `run` returns 0.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from app.config import SyncConfig
from app.daemon.http_server import serve
from app.daemon.metrics import CountingTransport, SyncMetrics
from app.daemon.replicas import LeaderOnlyWrites, ReplicaRole, default_holder, poll_seconds
from app.daemon.routes import Routes
from app.daemon.runner import Sleep, SyncOnce, SyncRunner
from app.daemon.settings import ServiceSettings
from app.http.calls import Pacing
from app.http.transport import Transport
from app.letta.directory import LettaDirectory
from app.state.lease import Lease
from app.sync.report import SyncReport
from app.sync.service import SyncService

log = logging.getLogger(__name__)


def sync_with(
    config: SyncConfig,
    transport: Transport,
    pacing: Pacing | None,
    fence: Callable[[], int | None] = lambda: None,
) -> SyncOnce:
    directory = LettaDirectory()  # one for the life of the service: steady syncs list changes

    async def once() -> tuple[SyncReport, int]:
        service = SyncService(
            config, transport, pacing=pacing, fence=fence(), letta_directory=directory
        )
        async with service:
            report = await service.sync()
            return report, sum(1 for m in service.mappings() if m.in_order)

    return once


class SyncDaemon:
    """Build it inside the event loop that runs it (it holds that loop's events)."""

    def __init__(
        self,
        config: SyncConfig,
        settings: ServiceSettings,
        transport: Transport | None = None,
        *,
        pacing: Pacing | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.settings = settings
        self.metrics = SyncMetrics()
        if transport is None:
            from app.http.httpx_transport import HttpxTransport

            transport = HttpxTransport(timeout=config.http_timeout)
        counted = CountingTransport(transport, self.metrics)
        # On PostgreSQL the daemon is one of possibly several replicas: only the leader syncs.
        self.role: ReplicaRole | None = None
        self._transport: Transport = counted
        if config.store_url:
            ttl = settings.lease_ttl
            lease = Lease(config.store_url, default_holder(), ttl, clock=clock)
            poll = poll_seconds(settings.interval, ttl)
            self.role = ReplicaRole(lease, poll, sleep=sleep, metrics=self.metrics)
            self._transport = LeaderOnlyWrites(counted, self.role)
        else:
            self.metrics.leading(True, 0.0)  # a lone daemon always leads
        fence = self.role.fence if self.role else lambda: None
        once = sync_with(config, self._transport, pacing, fence)
        self.runner = SyncRunner(
            once, settings, self.metrics, clock=clock, sleep=sleep, role=self.role
        )
        self._loop = anyio.CancelScope()

    def shutdown(self) -> None:
        """Start no new sync; give the one in flight `shutdown_timeout` seconds."""
        self.runner.stop()
        self._loop.deadline = min(
            self._loop.deadline, anyio.current_time() + self.settings.shutdown_timeout
        )

    async def run(
        self, *, signals: bool = True, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> int:
        """Serve and sync until `shutdown()` (or SIGTERM/SIGINT with `signals`); reports the
        bound port once listening."""
        s = self.settings
        try:
            async with anyio.create_task_group() as group:
                port = await group.start(serve, s.host, s.port, Routes(self.runner))
                log.info("listening on %s:%d; a sync every %g s", s.host, port, s.interval)
                if signals:
                    group.start_soon(self._stop_on_signal)
                if self.role is not None:
                    group.start_soon(self.role.run, self.runner)
                task_status.started(port)
                with self._loop:
                    await self.runner.run()
                if self._loop.cancel_called:
                    log.warning("the sync in flight was cancelled after %g s", s.shutdown_timeout)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._transport.aclose()
        return 0

    async def _stop_on_signal(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async for signum in received:
                log.info("%s: finishing the sync in flight, then exiting", signal.strsignal(signum))
                self.shutdown()
                return
