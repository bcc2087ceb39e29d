"""Pytest fixtures for testing code that uses this library (enable with
`pytest_plugins = ["app.testing.fixtures"]` in a conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.testing.fake_homeserver import FakeHomeserver
from app.testing.fake_letta import FakeLetta
from app.testing.harness import SyncHarness


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
