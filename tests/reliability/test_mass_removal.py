"""Mass-removal guard: an empty or failed agent listing never marks mappings removed."""

from __future__ import annotations

import pytest
from reliability_support import (
    HTML_PAGE,
    Effect,
    FrontDoor,
    file_bytes,
    mappings_on_disk,
    refuse,
    respond,
    seed,
)

from app.errors import ConfigError
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio

LIST_AGENTS = r"^/v1/agents/?$"
WRITES = ("createRoom", "put_state", "set_displayname", "register")

BAD_LISTINGS: dict[str, tuple[Effect, bool]] = {
    # name: (effect, repeat it for every request). A listing below Letta's count is walked
    # twice: these answer both walks.
    "empty_list": (respond(200, []), True),
    "empty_data": (respond(200, {"data": [], "has_more": False}), True),
    "only_invalid_records": (respond(200, [{"id": "agent-x", "name": None}, None]), True),
    "http_500": (respond(500, {"detail": "Internal Server Error"}), False),
    "http_503_html_forever": (respond(503, raw=HTML_PAGE), True),
    "refused_forever": (refuse(), True),
}


@pytest.mark.parametrize("listing", list(BAD_LISTINGS))
async def test_bad_listing_changes_no_mapping_and_no_file(
    door_harness: tuple[SyncHarness, FrontDoor], listing: str
) -> None:
    s = await seed(*door_harness)
    h = s.h
    before = file_bytes(h.data_dir)
    writes = {kind: h.homeserver.requests_by_kind[kind] for kind in WRITES}
    effect, forever = BAD_LISTINGS[listing]
    s.door.letta("GET", LIST_AGENTS, effect, forever=forever)

    report = await h.sync()

    assert not report.ok and report.letta_error
    assert report.removed_from_letta == [] and report.failures == []
    assert report.agents_seen == 0
    assert file_bytes(h.data_dir) == before
    assert {kind: h.homeserver.requests_by_kind[kind] for kind in WRITES} == writes
    s.door.rules.clear()
    await s.converge()


async def test_rejected_letta_token_is_a_configuration_error_that_changes_nothing(
    door_harness: tuple[SyncHarness, FrontDoor],
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    s.door.letta("GET", LIST_AGENTS, respond(401, {"detail": "Unauthorized"}))

    with pytest.raises(ConfigError, match="LETTA_TOKEN"):
        await s.h.sync()

    assert file_bytes(s.h.data_dir) == before
    s.door.rules.clear()
    await s.converge()


async def test_every_agent_deleted_in_letta_is_treated_as_an_outage(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    ids = [h.letta.add_agent(name) for name in ("One", "Two")]
    await h.sync()
    before = file_bytes(h.data_dir)
    for agent_id in ids:
        h.letta.remove(agent_id)

    report = await h.sync()

    assert report.letta_error is not None and "no agents" in report.letta_error
    assert report.removed_from_letta == []
    assert file_bytes(h.data_dir) == before


async def test_agent_missing_from_a_partial_listing_is_reported_and_kept(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    gone = h.letta.add_agent("Gone")
    h.letta.add_agent("Stays")
    await h.sync()
    before = mappings_on_disk(h.data_dir)
    h.letta.remove(gone)

    report = await h.sync()

    assert report.removed_from_letta == [gone]
    after = mappings_on_disk(h.data_dir)
    # Kept as it was, flagged for `status`; the flag goes when the agent comes back.
    assert after == {**before, gone: {**before[gone], "removed_from_letta": True}}
    room = before[gone]["room_id"]
    assert h.homeserver.members(room)[before[gone]["matrix_user_id"]] == "join"
    h.letta.add_agent("Gone", agent_id=gone)
    await h.sync()
    assert mappings_on_disk(h.data_dir) == before


async def test_empty_listing_on_a_fresh_install_is_not_an_error(
    sync_harness: SyncHarness,
) -> None:
    report = await sync_harness.sync()

    assert report.ok and report.letta_error is None and report.agents_seen == 0
    assert mappings_on_disk(sync_harness.data_dir) == {}


async def test_a_broken_page_after_the_first_is_a_letta_fault_not_a_configuration_error(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    for name in ("A", "B", "C"):
        h.letta.add_agent(name)
    await h.sync(letta_page_size=2)
    before = file_bytes(h.data_dir)
    h.letta.fail_next("list_agents", 200, {"unexpected": True}, after=1)

    report = await h.sync(letta_page_size=2)

    assert report.letta_error is not None and "page 2" in report.letta_error
    assert report.removed_from_letta == [] and file_bytes(h.data_dir) == before
