"""`plan` lists, just before each sync of every shared scenario, what that sync then reports
(tests/plan_checking.py; tests/contract/test_plan_matches_sync_synapse.py on Synapse)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from drift_scenarios import DRIFT_SCENARIOS
from plan_checking import PlanChecking

from app.testing.harness import SyncHarness

from scenarios import SCENARIOS
from worlds import FakeWorld, World

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["password", "appservice"])
@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_plan_lists_what_the_next_sync_does(
    scenario: Callable[[World], Awaitable[None]], mode: str, sync_harness: SyncHarness
) -> None:
    if mode == "appservice":
        sync_harness.use_appservice()
    world = PlanChecking(FakeWorld(sync_harness))
    await scenario(world)  # type: ignore[arg-type]
    assert world.mismatches == [] and (world.plans > 0 or world.syncs == 0)
