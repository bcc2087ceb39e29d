"""Contract tier: a real Synapse on 127.0.0.1, started once per test session.

The ``synapse`` fixture is the kit's own (app.testing.plugin), the one bridge authors get: it
skips when matrix-synapse is missing and fails instead under ``REQUIRE_SYNAPSE=1`` (CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer

from worlds import SynapseWorld

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.contract)


@pytest.fixture
def synapse_world(synapse: SynapseServer, tmp_path: Path) -> Iterator[SynapseWorld]:
    """A fresh bot, admin and data directory on the shared Synapse, and a fake Letta on HTTP."""
    letta = FakeLetta()
    with LettaHTTPServer(letta.handle) as server:
        yield SynapseWorld(synapse, letta, server.base_url, tmp_path / "data")
