"""`plan` lists what the next sync does, before every sync of every shared scenario, on a real
Synapse in both identity modes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from drift_scenarios import DRIFT_SCENARIOS
from plan_checking import PlanChecking

from scenarios import SCENARIOS
from worlds import SynapseWorld, World


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["password", "appservice"])
@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_plan_lists_what_the_next_sync_does_on_synapse(
    scenario: Callable[[World], Awaitable[None]], mode: str, request: pytest.FixtureRequest
) -> None:
    fixture = "appservice_world" if mode == "appservice" else "synapse_world"
    world: SynapseWorld = request.getfixturevalue(fixture)
    checking = PlanChecking(world)
    await scenario(checking)  # type: ignore[arg-type]
    assert checking.mismatches == [] and (checking.plans > 0 or checking.syncs == 0)
