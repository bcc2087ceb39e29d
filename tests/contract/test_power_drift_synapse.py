"""Power drift on a real Synapse whose rooms are of version 10 (power levels decide; in 12
the admin is a creator), checked with `plan` before every sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from drift_scenarios import a_demoted_admin_is_restored_and_the_room_renamed_back
from plan_checking import PlanChecking

from app.testing.letta import FakeLetta, LettaHTTPServer
from app.testing.plugin import require_synapse
from app.testing.synapse import SynapseServer

from worlds import SynapseWorld

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def synapse_v10(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    python = require_synapse()
    path = tmp_path_factory.mktemp("synapse-v10")
    with SynapseServer(path, python=python, room_version="10") as server:
        yield server


async def test_a_demoted_admin_is_restored_on_synapse(
    synapse_v10: SynapseServer, tmp_path: Path
) -> None:
    letta = FakeLetta()
    with LettaHTTPServer(letta.handle) as http:
        world = PlanChecking(SynapseWorld(synapse_v10, letta, http.base_url, tmp_path / "data"))
        await a_demoted_admin_is_restored_and_the_room_renamed_back(world)  # type: ignore[arg-type]
    assert world.mismatches == [] and world.plans > 0
