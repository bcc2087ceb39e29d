"""The account scenarios (tests/account_scenarios.py) against a real Synapse: deactivation and
password resets through its admin API, a user id with another server part."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from account_scenarios import CLI_SCENARIOS

from worlds import SynapseWorld, World


@pytest.mark.parametrize("scenario", CLI_SCENARIOS, ids=lambda s: s.__name__)
def test_account_scenario(scenario: Callable[[World], None], synapse_world: SynapseWorld) -> None:
    scenario(synapse_world)
