"""The shared scenarios against a real Synapse on 127.0.0.1 and the fake Letta over HTTP, in
both identity modes, with `plan --json` before every sync.

Each scenario asserts what Synapse holds after its syncs; the plan check adds that `plan`
listed what each sync then did (tests/plan_checking.py). One run gives both: a plan only
reads, so each scenario meets the homeserver it would meet without it (a second run of the
scenarios without plans cost about four minutes of every CI run).
"""

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
async def test_scenario_on_synapse_as_planned(
    scenario: Callable[[World], Awaitable[None]], mode: str, request: pytest.FixtureRequest
) -> None:
    """`appservice`: registration closed and default rate limits (the appservice world)."""
    fixture = "appservice_world" if mode == "appservice" else "synapse_world"
    world: SynapseWorld = request.getfixturevalue(fixture)
    checking = PlanChecking(world)
    await scenario(checking)  # type: ignore[arg-type]
    assert checking.mismatches == [] and (checking.plans > 0 or checking.syncs == 0)
