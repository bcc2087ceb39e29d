"""Power drift on a room version 10 homeserver (the fakes; tests/contract/ runs it on a
Synapse whose rooms are of version 10), checked with `plan` before every sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from drift_scenarios import a_demoted_admin_is_restored_and_the_room_renamed_back
from plan_checking import PlanChecking

from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver

from worlds import FakeWorld

pytestmark = pytest.mark.anyio


async def test_a_demoted_admin_is_restored_in_a_version_10_room(tmp_path: Path) -> None:
    homeserver = FakeHomeserver(seed=1, default_room_version="10")
    world = PlanChecking(FakeWorld(SyncHarness(tmp_path / "data", homeserver=homeserver)))

    await a_demoted_admin_is_restored_and_the_room_renamed_back(world)  # type: ignore[arg-type]

    assert world.mismatches == [] and world.plans > 0
