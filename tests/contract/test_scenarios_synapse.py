"""The shared scenarios against a real Synapse on 127.0.0.1 and the fake Letta over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from drift_scenarios import DRIFT_SCENARIOS

from scenarios import SCENARIOS
from worlds import SynapseWorld, World

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_scenario(
    scenario: Callable[[World], Awaitable[None]], synapse_world: SynapseWorld
) -> None:
    await scenario(synapse_world)


@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_scenario_in_appservice_mode(
    scenario: Callable[[World], Awaitable[None]], appservice_world: SynapseWorld
) -> None:
    """The same on a Synapse with registration closed and default rate limits."""
    await scenario(appservice_world)
