"""A homeserver that restarts in the middle of a sync, or stops and stays down.

The outage is a front-door rule that refuses every Matrix connection from the k-th request on,
for a while or for good, in virtual time: every retry and every concurrent agent runs as it
would, without real waiting.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import (
    after_server,
    assert_converged,
    cut_off,
    harness_with_door,
    mappings_on_disk,
    state_files_valid,
)

from app import SyncConfig, SyncService
from app.cli import main
from app.errors import TransportError
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver
from app.testing.virtual_clock import VirtualClock

pytestmark = pytest.mark.anyio


class Outage:
    """Matrix refuses connections after `after` requests, for `seconds` (None: for good).

    With `cut`, the outage begins with a createRoom that the server carries out but whose
    reply the client never gets, as when the server stops under a request in flight.
    """

    def __init__(
        self,
        clock: VirtualClock,
        after: int,
        seconds: float | None,
        cut: FakeHomeserver | None = None,
    ) -> None:
        self.clock = clock
        self.after = after
        self.seconds = seconds
        self.cut = cut
        self.seen = self.refused = 0
        self.began: float | None = None

    def __call__(self, request: httpx.Request) -> None:
        self.clock.touch()
        self.seen += 1
        if self.began is None and self.seen > self.after:
            if self.cut is not None and not request.url.path.endswith("/createRoom"):
                return
            self.began = self.clock.now
            if self.cut is not None:
                after_server(self.cut, cut_off())(request)
        if self.began is not None and (
            self.seconds is None or self.clock.now < self.began + self.seconds
        ):
            self.refused += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def world(
    tmp_path: Path, agents: int, after: int, seconds: float | None, *, cut: bool = False
) -> tuple[SyncHarness, VirtualClock, Outage, list[str]]:
    clock = VirtualClock()
    h, door = harness_with_door(tmp_path / "data")
    outage = Outage(clock, after, seconds, h.homeserver if cut else None)
    door.matrix("*", "", outage, forever=True)
    ids = [h.letta.add_agent(f"Agent {i}") for i in range(agents)]
    return h, clock, outage, ids


def service(h: SyncHarness, clock: VirtualClock, **overrides: Any) -> SyncService:
    return SyncService(
        h.config(history_import_limit=0, **overrides),
        h.transport(),
        pacing=clock.pacing(),
        durable=False,
    )


@pytest.mark.parametrize(("budget", "down_for"), [(None, 5.0), (None, 25.0), (90.0, 75.0)])
async def test_a_restart_within_the_budget_is_ridden_out_in_the_same_sync(
    tmp_path: Path, budget: float | None, down_for: float
) -> None:
    h, clock, outage, ids = world(tmp_path, agents=12, after=30, seconds=down_for)
    overrides = {} if budget is None else {"retry_budget": budget}

    async with clock.running(), service(h, clock, **overrides) as sync:
        report = await sync.sync()

    assert outage.refused > 0 and clock.now >= outage.began + down_for
    assert report.ok, report.failures
    assert_converged(h.homeserver, h.data_dir, ids, members=(h.admin_id, h.bot_id))


async def test_a_create_room_cut_by_the_restart_is_found_again_in_the_same_sync(
    tmp_path: Path,
) -> None:
    h, clock, outage, ids = world(tmp_path, agents=12, after=30, seconds=5.0, cut=True)

    async with clock.running(), service(h, clock) as sync:
        report = await sync.sync()

    assert outage.refused > 0
    assert report.ok, report.failures
    assert_converged(h.homeserver, h.data_dir, ids, members=(h.admin_id, h.bot_id))


async def test_an_outage_longer_than_the_budget_ends_the_sync_naming_the_setting(
    tmp_path: Path,
) -> None:
    h, clock, outage, _ = world(tmp_path, agents=40, after=60, seconds=40.0)

    async with clock.running(), service(h, clock, retry_budget=10.0) as sync:
        with pytest.raises(TransportError) as caught:
            await sync.sync()

    message = str(caught.value)
    assert "MATRIX_HOMESERVER_URL=http://localhost:8008" in message
    assert "RETRY_BUDGET" in message
    assert outage.began is not None
    # One budget for the whole sync, not one per agent: 40 agents do not wait 40 times.
    assert clock.now - outage.began <= 10.0 + 5.0
    state_files_valid(h.data_dir)


async def test_a_homeserver_that_stays_down_ends_in_bounded_time_keeping_the_work_done(
    tmp_path: Path,
) -> None:
    h, clock, outage, ids = world(tmp_path, agents=40, after=80, seconds=None)

    async with clock.running(), service(h, clock) as sync:
        with pytest.raises(TransportError) as caught:
            await sync.sync()

    assert "MATRIX_HOMESERVER_URL" in str(caught.value)
    assert outage.began is not None and clock.now - outage.began <= 30.0 + 5.0
    state_files_valid(h.data_dir)
    done = [agent for agent, m in mappings_on_disk(h.data_dir).items() if m.get("room_id")]
    assert done, "the agents finished before the outage are kept"
    outage.seconds = 0.0  # back up: the next sync finishes the rest
    async with clock.running(), service(h, clock) as sync:
        report = await sync.sync()
    assert report.ok, report.failures
    assert_converged(h.homeserver, h.data_dir, ids, members=(h.admin_id, h.bot_id))


def test_the_command_line_exits_2_naming_the_homeserver_when_it_stays_down(
    tmp_path: Path, restore_logging: None
) -> None:
    h, _, outage, _ = world(tmp_path, agents=3, after=12, seconds=None)
    out, err = io.StringIO(), io.StringIO()
    env = env_of(h.config(retry_budget=0.05))  # real waits of at most 0.05 s

    code = main(["sync"], env=env, transport=h.transport(), out=out, err=err)

    assert code == 2, err.getvalue()
    assert outage.refused > 0
    last = err.getvalue().strip().splitlines()[-1]
    assert last.startswith("error: ") and "MATRIX_HOMESERVER_URL=http://localhost:8008" in last


def env_of(config: SyncConfig) -> dict[str, str]:
    return {
        "MATRIX_HOMESERVER_URL": config.homeserver_url,
        "MATRIX_USERNAME": config.username,
        "MATRIX_PASSWORD": config.password,
        "MATRIX_ADMIN_USERNAME": config.admin_user,
        "MATRIX_ADMIN_PASSWORD": config.admin_secret,
        "LETTA_API_URL": config.letta_url,
        "MATRIX_DATA_DIR": str(config.data_dir),
        "RETRY_BUDGET": str(config.retry_budget),
        "LOG_LEVEL": "ERROR",
    }
