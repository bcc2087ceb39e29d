"""On trio, against a real Synapse: whole syncs, as the fakes prove on both backends.

The rest of the contract tier runs on asyncio only (tests/contract/conftest.py); these keep the
trio path honest against a real server, in both identity modes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from drift_scenarios import agent_that_left_is_brought_back, plan_shows_the_drift_a_sync_repairs

from scenarios import full_sync_from_empty_state, rename_follows_on_next_sync
from worlds import SynapseWorld, World

pytestmark = pytest.mark.anyio

SMOKE = [
    full_sync_from_empty_state,
    rename_follows_on_next_sync,
    agent_that_left_is_brought_back,
    plan_shows_the_drift_a_sync_repairs,
]


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.parametrize("scenario", SMOKE, ids=lambda s: s.__name__)
async def test_scenario_on_trio(
    scenario: Callable[[World], Awaitable[None]], synapse_world: SynapseWorld
) -> None:
    await scenario(synapse_world)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_appservice_sync_on_trio(appservice_world: SynapseWorld) -> None:
    await full_sync_from_empty_state(appservice_world)
