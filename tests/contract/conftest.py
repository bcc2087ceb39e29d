"""Contract tier: a real Synapse on 127.0.0.1, started once per test session."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.testing.synapse import SynapseServer, synapse_available, synapse_python

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_MISSING = "matrix-synapse not installed; pip install -e '.[test,contract]'"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.contract)


def _require_synapse() -> None:
    if not synapse_available(synapse_python()):
        if os.environ.get("REQUIRE_SYNAPSE") == "1":
            pytest.fail(_MISSING)
        pytest.skip(_MISSING)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A running Synapse (server name ``localhost``) with open registration."""
    _require_synapse()
    server = SynapseServer(tmp_path_factory.mktemp("synapse"))
    with server:
        logger.info("Synapse started in %.2fs", server.startup_seconds or 0.0)
        yield server


@pytest.fixture
def synapse_default_limits(tmp_path: Path) -> Iterator[SynapseServer]:
    """Synapse with every rate limiter at its default, as a stock production server.

    One per test: its buckets start full (it starts in about 2 s).
    """
    _require_synapse()
    with SynapseServer(tmp_path / "synapse-limits", default_rate_limits=True) as server:
        yield server


@pytest.fixture(scope="session")
def synapse_to_restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A Synapse of its own for tests that stop and start it."""
    _require_synapse()
    with SynapseServer(tmp_path_factory.mktemp("synapse-restart")) as server:
        yield server
