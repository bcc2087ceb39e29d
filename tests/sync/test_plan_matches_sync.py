"""`plan` lists, just before each sync of every shared scenario, what that sync then reports
(tests/plan_checking.py; tests/contract/test_scenarios_synapse.py on Synapse)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import anyio
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


async def test_plan_on_a_new_data_directory_in_appservice_mode_creates_nothing(
    sync_harness: SyncHarness,
) -> None:
    """The appservice adopts what a lost data directory knew (users, rooms and space, found by
    their tags): plan says so, rather than create everything."""
    sync_harness.use_appservice()
    world = PlanChecking(FakeWorld(sync_harness))
    ids = [world.letta.add_agent(f"Kept {n}") for n in range(2)]
    await world.sync()
    for name in ("agent_user_mappings.json", "letta_space_config.json", "access_tokens.json"):
        (world.data_dir / name).unlink(missing_ok=True)

    code, out, _ = await anyio.to_thread.run_sync(lambda: world.cli("plan", "--json"))
    report = await world.sync()

    plan = json.loads(out)
    assert code == 0 and plan["space"] == "keep"
    assert {a["action"] for a in plan["actions"]} == {"ok"}
    assert report.ok and not report.users_created and not report.rooms_created
    assert report.space_found and not report.space_created
    assert world.mismatches == [] and world.plans == 2 and len(ids) == 2
