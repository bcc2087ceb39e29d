"""The shared scenarios against a real Synapse on 127.0.0.1 and the fake Letta over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer

from scenarios import SCENARIOS
from worlds import SynapseWorld, World

pytestmark = pytest.mark.anyio


@pytest.fixture
def synapse_world(synapse: SynapseServer, tmp_path: Path) -> Iterator[SynapseWorld]:
    letta = FakeLetta()
    with LettaHTTPServer(letta.handle) as server:
        yield SynapseWorld(synapse, letta, server.base_url, tmp_path / "data")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario(
    scenario: Callable[[World], Awaitable[None]], synapse_world: SynapseWorld
) -> None:
    await scenario(synapse_world)
