"""The sync loop with a fake sync and an injected clock and sleep: no real waiting."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from app.daemon.metrics import PREFIX, SyncMetrics
from app.daemon.runner import SyncRunner
from app.daemon.settings import ServiceSettings
from app.errors import ConnectionFailed, SyncLocked
from app.sync.report import SyncReport
from app.testing.clock import FakeClock

pytestmark = pytest.mark.anyio


class FakeSyncs:
    """Syncs that fail while `down` is set; each one can be held open by `gate`."""

    def __init__(self) -> None:
        self.count = 0
        self.concurrent = self.most_concurrent = 0
        self.down: str | None = None
        self.gate: anyio.Event | None = None
        self.started = anyio.Event()

    async def __call__(self) -> tuple[SyncReport, int]:
        self.count += 1
        self.concurrent += 1
        self.most_concurrent = max(self.most_concurrent, self.concurrent)
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.down:
                raise ConnectionFailed(self.down)
            return SyncReport(), 3
        finally:
            self.concurrent -= 1


class Sleeps:
    """Records every wait; each returns only when the test lets it (or a trigger ends it)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.asked: list[float] = []
        self.release = anyio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.release.wait()
        self.release = anyio.Event()
        self.clock.now += seconds


def runner_with(syncs: FakeSyncs, clock: FakeClock, sleeps: Sleeps) -> SyncRunner:
    settings = ServiceSettings(interval=60, max_backoff=300)
    return SyncRunner(syncs, settings, SyncMetrics(), clock=clock.monotonic, sleep=sleeps)


async def until(condition: object) -> None:
    with anyio.fail_after(5):
        while not condition():  # type: ignore[operator]
            await anyio.lowlevel.checkpoint()


async def test_triggers_during_a_sync_queue_exactly_one_more_and_never_overlap() -> None:
    clock = FakeClock()
    syncs, sleeps = FakeSyncs(), Sleeps(clock)
    syncs.gate = anyio.Event()
    runner = runner_with(syncs, clock, sleeps)
    async with anyio.create_task_group() as group:
        group.start_soon(runner.run)
        await syncs.started.wait()
        for _ in range(5):
            runner.trigger()  # five webhooks while the first sync runs
        syncs.gate.set()
        await until(lambda: sleeps.asked)  # the queued sync ran, then the loop waits
        assert (syncs.count, syncs.most_concurrent) == (2, 1)
        runner.trigger()  # a trigger while waiting starts a sync at once
        await until(lambda: syncs.count == 3)
        runner.stop()
    assert sleeps.asked[0] == 60 and syncs.most_concurrent == 1


async def test_a_down_server_backs_off_doubling_up_to_the_cap_and_readyz_says_why() -> None:
    clock = FakeClock()
    syncs, sleeps = FakeSyncs(), Sleeps(clock)
    syncs.down = "cannot reach the homeserver (MATRIX_HOMESERVER_URL=http://hs): refused"
    runner = runner_with(syncs, clock, sleeps)
    async with anyio.create_task_group() as group:
        group.start_soon(runner.run)
        for attempt in range(1, 6):
            await until(lambda attempt=attempt: len(sleeps.asked) == attempt)
            readiness = runner.readiness()
            assert not readiness.ready and "cannot reach the homeserver" in readiness.reason
            sleeps.release.set()
        syncs.down = None
        await until(lambda: len(sleeps.asked) == 6)
        assert runner.readiness().ready
        runner.stop()
    assert sleeps.asked == [60, 120, 240, 300, 300, 60]
    assert syncs.count == 6  # the errors never ended the loop


async def test_readiness_goes_stale_after_three_intervals_without_a_good_sync() -> None:
    clock = FakeClock()
    syncs, sleeps = FakeSyncs(), Sleeps(clock)
    runner = runner_with(syncs, clock, sleeps)
    assert runner.readiness().reason == "no sync has finished yet"
    await runner.sync_now()
    assert runner.readiness().to_json() == {
        "ready": True,
        "role": "leader",
        "reason": "last sync finished without a setup error",
    }
    clock.now += 181
    stale = runner.readiness()
    assert not stale.ready and "no successful sync for over 180 s" in stale.reason


async def test_a_good_sync_resets_the_backoff_for_the_next_outage() -> None:
    clock = FakeClock()
    syncs, sleeps = FakeSyncs(), Sleeps(clock)
    runner = runner_with(syncs, clock, sleeps)
    async with anyio.create_task_group() as group:
        group.start_soon(runner.run)
        for waits, down in enumerate(("refused", "refused", None, "refused again"), start=1):
            syncs.down = down
            await until(lambda waits=waits: len(sleeps.asked) == waits)
            sleeps.release.set()
        await until(lambda: len(sleeps.asked) == 5)
        runner.stop()
    # 60, then doubled; a good sync; a new outage starts over at the interval.
    assert sleeps.asked[:4] == [60, 120, 60, 60]


class OneSync:
    """A sync that answers one way: a report, or an error raised."""

    def __init__(self, answer: SyncReport | Exception) -> None:
        self.answer = answer

    async def __call__(self) -> tuple[SyncReport, int]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer, 0


def outcomes(metrics: SyncMetrics) -> dict[str, float]:
    """The syncs counter by outcome, and how many durations were observed."""
    read = metrics.registry.get_sample_value
    found = {o: read(f"{PREFIX}_syncs_total", {"outcome": o}) or 0.0 for o in OUTCOMES}
    return {**found, "timed": read(f"{PREFIX}_sync_duration_seconds_count") or 0.0}


OUTCOMES = ("ok", "failures", "error")


async def test_a_sync_that_waits_for_the_lock_counts_once_as_an_error_and_says_why() -> None:
    clock = FakeClock()
    metrics = SyncMetrics()
    locked = SyncLocked("another sync holds the lock of /data")
    runner = SyncRunner(OneSync(locked), ServiceSettings(), metrics, clock=clock.monotonic)

    await runner.sync_now()

    assert runner.problem == "waiting for the lock: another sync holds the lock of /data"
    assert runner.failures_in_a_row == 1 and runner.syncs_finished == 1
    assert outcomes(metrics) == {"ok": 0, "failures": 0, "error": 1, "timed": 1}


async def test_a_sync_letta_failed_counts_once_as_failures_not_also_as_an_error() -> None:
    metrics = SyncMetrics()
    report = SyncReport(letta_error="LettaError: 500")
    runner = SyncRunner(OneSync(report), ServiceSettings(), metrics, clock=FakeClock().monotonic)

    await runner.sync_now()

    assert runner.problem == "Letta: LettaError: 500" and runner.failures_in_a_row == 1
    assert outcomes(metrics) == {"ok": 0, "failures": 1, "error": 0, "timed": 1}


async def test_a_good_sync_after_failures_clears_the_problem() -> None:
    metrics = SyncMetrics()
    sync = OneSync(ConnectionFailed("down"))
    runner = SyncRunner(sync, ServiceSettings(), metrics, clock=FakeClock().monotonic)
    await runner.sync_now()
    sync.answer = SyncReport()

    await runner.sync_now()

    assert (runner.problem, runner.failures_in_a_row) == (None, 0)
    assert outcomes(metrics) == {"ok": 1, "failures": 0, "error": 1, "timed": 2}


async def test_readiness_says_what_a_leader_lacks_in_words() -> None:
    clock = FakeClock()
    sync = OneSync(ConnectionFailed("homeserver down"))
    runner = SyncRunner(sync, ServiceSettings(interval=60), SyncMetrics(), clock=clock.monotonic)
    states = [runner.readiness().to_json()]
    await runner.sync_now()
    states.append(runner.readiness().to_json())
    sync.answer = SyncReport()
    await runner.sync_now()
    states.append(runner.readiness().to_json())
    clock.now += 181  # three intervals and a second without a sync
    states.append(runner.readiness().to_json())

    assert [(s["ready"], s["role"], s["reason"]) for s in states] == [
        (False, "leader", "no sync has finished yet"),
        (False, "leader", "ConnectionFailed: homeserver down"),
        (True, "leader", "last sync finished without a setup error"),
        (False, "leader", "no successful sync for over 180 s"),
    ]
