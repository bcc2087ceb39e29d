"""Virtual time for tests with many concurrent tasks, on asyncio and trio.

`FakeClock` moves time forward by every single sleep, which is right for one caller and wrong
for many: eight tasks each sleeping one second would move it eight seconds. `VirtualClock`
keeps real concurrency: a sleep ends when its deadline is the earliest one and every task has
settled (no request handled, no sleep begun, for a while). Time then jumps to that deadline.
Nothing waits in real time, so a sync that takes minutes under rate limits runs in moments.

    clock = VirtualClock()
    async with clock.running():
        report = await service.sync()      # built with pacing=clock.pacing()
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from app.http.calls import Pacing

# Scheduler rounds without any activity after which every task is taken to be waiting.
SETTLE_ROUNDS = 25


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        self._activity = 0

    def monotonic(self) -> float:
        return self.now

    def touch(self) -> None:
        """Note that work happened (a fake handled a request): time must not jump yet."""
        self._activity += 1

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.touch()
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        wake = anyio.Event()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake.wait()

    def pacing(self, random: Callable[[], float] = lambda: 0.5) -> Pacing:
        return Pacing(sleep=self.sleep, monotonic=self.monotonic, random=random)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[VirtualClock]:
        """Advance time while the body runs; stop when it ends."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._drive)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()

    async def _drive(self) -> None:
        while True:
            await self._settle()
            if not self._sleepers:
                continue
            deadline, _, wake = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            wake.set()

    async def _settle(self) -> None:
        quiet = 0
        while quiet < SETTLE_ROUNDS:
            seen = self._activity
            await anyio.lowlevel.checkpoint()
            quiet = quiet + 1 if self._activity == seen else 0
