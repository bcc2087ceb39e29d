"""Letta's side against real servers: the checks of tests/letta_contract_checks.py on a real
Letta 0.16.8, and the Letta scenarios with a real Synapse on the fake Letta and on the real
one. The real Letta is started by the test run (tests/letta_real/launch.py); CI makes it
required with REQUIRE_LETTA=1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from letta_contract_checks import CHECKS, Check
from letta_scenarios import LETTA_SCENARIOS
from letta_targets import RestLetta, served_fake

from app.testing.synapse import SynapseServer

from worlds import SynapseWorld

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_real_letta_behaves_as_the_fake_assumes(check: Check, real_letta: RestLetta) -> None:
    check(real_letta)


@pytest.fixture(params=["fake", "real"])
def letta_target(request: pytest.FixtureRequest) -> Iterator[RestLetta]:
    if request.param == "real":
        real: RestLetta = request.getfixturevalue("real_letta")
        real.clear()  # the server is shared by the session, the homeserver's users too
        yield real
        return
    with served_fake("scenario-token") as target:
        yield target


@pytest.mark.parametrize("scenario", LETTA_SCENARIOS, ids=lambda s: s.__name__)
async def test_letta_scenario(
    scenario: Callable[[SynapseWorld], Awaitable[None]],
    letta_target: RestLetta,
    synapse: SynapseServer,
    tmp_path: Path,
) -> None:
    world = SynapseWorld(synapse, letta_target, letta_target.base_url, tmp_path / "data")
    world.config = replace(world.config, letta_token=letta_target.token)
    await scenario(world)
