"""History import: each message once, whatever was lost, and never a message retried forever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from app.state import MappingStore
from app.state.models import HISTORY_PENDING
from app.sync.history import HISTORICAL_KEY, spoken_text
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio

PROXY_BODY_LIMIT = 4_096  # a reverse proxy in front of the homeserver with a small body limit


def stored(h: SyncHarness) -> dict[str, Any]:
    return dict(json.loads((h.data_dir / "agent_user_mappings.json").read_text()))


def history_in(h: SyncHarness, room_id: str) -> list[str]:
    timeline = h.homeserver.room(room_id).timeline
    return [spoken_text(e.content) for e in timeline if e.content.get(HISTORICAL_KEY)]


async def test_a_message_no_event_can_hold_is_skipped_noted_and_never_retried(
    tmp_path: Path,
) -> None:
    router = respx.MockRouter(using=None, assert_all_called=False)

    def proxy_limit(request: httpx.Request) -> httpx.Response | None:
        if len(request.content) > PROXY_BODY_LIMIT:
            return httpx.Response(413, html="<h1>413 Request Entity Too Large</h1>")
        return None  # small enough: on to the homeserver

    too_large = router.put(path__regex=r"/send/").mock(side_effect=proxy_limit)
    h = SyncHarness(tmp_path / "data", router=router)
    agent_id = h.letta.add_agent("Wordy")
    h.letta.add_message(agent_id, "user_message", "before")
    h.letta.add_message(agent_id, "assistant_message", "word " * 14_000)
    h.letta.add_message(agent_id, "user_message", "after")

    first = await h.sync()
    refusals = too_large.call_count
    second = await h.sync()

    assert first.ok and second.ok, (first.failures, second.failures)
    (huge_line,) = h.letta.agent(agent_id).rows[-2].records
    assert first.history_skipped == {agent_id: [huge_line.otid]}
    assert "history messages skipped: 1" in first.summary()
    assert history_in(h, stored(h)[agent_id]["room_id"]) == ["before", "after"]
    assert HISTORY_PENDING not in stored(h)[agent_id]
    assert too_large.call_count == refusals and not second.history_skipped


async def test_a_post_that_landed_unrecorded_is_not_posted_again_from_a_new_device(
    sync_harness: SyncHarness,
) -> None:
    """Killed after the homeserver took a message and before the mapping recorded it."""
    h = sync_harness
    agent_id = h.letta.add_agent("Interrupted")
    for text in ("one", "two", "three"):
        h.letta.add_message(agent_id, "user_message", text)
    assert (await h.sync()).ok
    mapping = stored(h)[agent_id]
    store = MappingStore.open(h.data_dir)
    record = store.get(agent_id)
    assert record is not None
    record.history_pending, record.history_done = True, ["not-a-letta-id"]
    store.save_mapping(record)
    store.close()
    # A new token means a new device: transaction ids no longer dedupe anything.
    tokens = json.loads((h.data_dir / "access_tokens.json").read_text())
    h.homeserver.expire_token(tokens[mapping["matrix_user_id"]]["access_token"])

    report = await h.sync()

    assert report.ok, report.failures
    assert history_in(h, mapping["room_id"]) == ["one", "two", "three"]
    assert not report.history_imported and HISTORY_PENDING not in stored(h)[agent_id]
