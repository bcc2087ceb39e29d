"""Pytest fixtures for testing code that uses this library (enable with
`pytest_plugins = ["app.testing.plugin"]` in a conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver
from app.testing.letta import FakeLetta


@pytest.fixture
def sync_harness(tmp_path: Path) -> SyncHarness:
    """A fake homeserver and fake Letta on one respx router, and a data directory."""
    return SyncHarness(tmp_path / "data")


@pytest.fixture
def fake_homeserver(sync_harness: SyncHarness) -> FakeHomeserver:
    return sync_harness.homeserver


@pytest.fixture
def fake_letta(sync_harness: SyncHarness) -> FakeLetta:
    return sync_harness.letta
