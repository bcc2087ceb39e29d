"""The shared scenarios on the in-process fakes (respx routes through HttpxTransport)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from drift_scenarios import DRIFT_SCENARIOS

from app.testing.harness import SyncHarness

from scenarios import SCENARIOS
from worlds import FakeWorld, World

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["password", "appservice"])
@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_scenario(
    scenario: Callable[[World], Awaitable[None]], mode: str, sync_harness: SyncHarness
) -> None:
    if mode == "appservice":
        sync_harness.use_appservice()
    await scenario(FakeWorld(sync_harness))
