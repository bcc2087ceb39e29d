"""The daemon's sync: one Letta directory for the life of the service, so that after the
first sync each one asks Letta only for what changed."""

from __future__ import annotations

import pytest

from app.daemon.service import sync_with
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio


async def test_after_the_first_sync_the_daemon_lists_only_what_changed_in_letta(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    for n in range(3):
        h.letta.add_agent(f"Agent {n}")
    once = sync_with(h.config(), h.transport(), h.clock.pacing())

    listings = []
    for _ in range(3):
        before = len(h.router.calls)
        report, in_order = await once()
        assert report.ok and in_order == 3
        calls = list(h.router.calls)[before:]
        listings.append(
            [c.request.url.params for c in calls if c.request.url.path == "/v1/agents/"]
        )

    first, *steady = listings
    assert any("order_by" not in params for params in first)  # a full walk
    for listed in steady:
        assert listed and all(params.get("order_by") == "updated_at" for params in listed)
