"""Contract tier: a real Synapse on 127.0.0.1, started by the test run itself.

The ``synapse`` fixture is the kit's own (app.testing.plugin), the one bridge authors get: it
skips when matrix-synapse is missing and fails instead under ``REQUIRE_SYNAPSE=1`` (CI). The
production-shaped variants below start Synapses of their own the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.plugin import require_synapse
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


@pytest.fixture
def synapse_default_limits(tmp_path: Path) -> Iterator[SynapseServer]:
    """Synapse with every rate limiter at its default, as a stock production server.

    One per test: its buckets start full (it starts in about 2 s).
    """
    python = require_synapse()
    path = tmp_path / "synapse-limits"
    with SynapseServer(path, python=python, default_rate_limits=True) as server:
        yield server


@pytest.fixture(scope="session")
def synapse_to_restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A Synapse of its own for tests that stop and start it."""
    python = require_synapse()
    with SynapseServer(tmp_path_factory.mktemp("synapse-restart"), python=python) as server:
        yield server
