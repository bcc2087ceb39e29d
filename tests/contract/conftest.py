"""Contract tier: a real Synapse on 127.0.0.1, started once per test session."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer, synapse_available, synapse_python

from worlds import SynapseWorld

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_MISSING = "matrix-synapse not installed; pip install -e '.[test,contract]'"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.contract)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A running Synapse (server name ``localhost``) with open registration."""
    if not synapse_available(synapse_python()):
        if os.environ.get("REQUIRE_SYNAPSE") == "1":
            pytest.fail(_MISSING)
        pytest.skip(_MISSING)
    server = SynapseServer(tmp_path_factory.mktemp("synapse"))
    with server:
        logger.info("Synapse started in %.2fs", server.startup_seconds or 0.0)
        yield server


@pytest.fixture
def synapse_world(synapse: SynapseServer, tmp_path: Path) -> Iterator[SynapseWorld]:
    """A fresh bot, admin and data directory on the shared Synapse, and a fake Letta on HTTP."""
    letta = FakeLetta()
    with LettaHTTPServer(letta.handle) as server:
        yield SynapseWorld(synapse, letta, server.base_url, tmp_path / "data")
