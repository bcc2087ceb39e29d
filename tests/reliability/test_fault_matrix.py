"""The fault matrix: every way the two servers fail, on asyncio and trio.

Each test seeds two agents cleanly, adds a third, injects one fault into the next sync and
checks three things: the sync ends with a typed `SyncError` (setup failures) or a report entry
naming the agent and the cause; the state files are valid JSON and keep every earlier mapping;
a following clean sync converges to one user and one tagged room per agent, all in the space.
Waits go through the harness's instant clock, so `Seeded.sleeps()` shows every backoff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    HTML_PAGE,
    Effect,
    FrontDoor,
    Seeded,
    after_server,
    assert_kept,
    call_then_fall_through,
    connect_timeout,
    cut_off,
    file_bytes,
    harness_with_door,
    imported_history,
    mappings_on_disk,
    read_timeout,
    refuse,
    respond,
    seed,
    tagged_rooms,
    tokens_on_disk,
)

from app import ConfigError, ConnectionFailed, MalformedResponse, MatrixError, RequestTimeout
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio

CREATE_ROOM = r"/_matrix/client/v3/createRoom$"
SYNC = r"/_matrix/client/v3/sync$"
LIST_AGENTS = r"^/v1/agents/?$"
# The listing and its count: a Letta in trouble fails both.
LETTA_AGENT_LISTING = r"^/v1/agents/(count)?$"
BACKOFFS = [0.5, 1.0, 2.0, 4.0]  # RetryPolicy defaults with the clock's jitter-free random
HTML = {"content-type": "text/html"}
M_UNKNOWN = {"errcode": "M_UNKNOWN", "error": "Internal server error"}

DoorHarness = tuple[SyncHarness, FrontDoor]


def only_failure(s: Seeded, report: Any, step: str, error: str) -> str:
    """The report names the new agent, the step and the error class; returns the reason."""
    assert [(f.agent_id, f.agent_name, f.step) for f in report.failures] == [
        (s.new, "Carol", step)
    ], report.failures
    reason: str = report.failures[0].reason
    assert reason.startswith(f"{error}: "), reason
    return reason


def create_room_requests(s: Seeded) -> int:
    return s.h.homeserver.requests_by_kind["createRoom"]


# Transport faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [refuse, connect_timeout], ids=["refused", "connect_timeout"])
async def test_connect_fault_before_anything_was_sent_is_retried(
    door_harness: DoorHarness, fault: Any
) -> None:
    s = await seed(*door_harness)
    s.door.matrix("POST", CREATE_ROOM, fault(), fault())

    report = await s.h.sync()

    assert report.ok, report.failures
    assert s.sleeps() == BACKOFFS[:2]
    assert len(tagged_rooms(s.h.homeserver)[s.new]) == 1
    await s.converge()


# A homeserver that answered before is given RETRY_BUDGET (30 s) to come back, asked again at
# least every 4 s; then the sync ends, keeping what it did.
BUDGET_WAITS = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 2.5]


@pytest.mark.parametrize("fault", [refuse, connect_timeout], ids=["refused", "connect_timeout"])
async def test_connect_fault_that_persists_ends_the_sync_after_the_retry_budget(
    door_harness: DoorHarness, fault: Any
) -> None:
    s = await seed(*door_harness)
    rule = s.door.matrix("POST", CREATE_ROOM, fault(), forever=True)

    with pytest.raises(ConnectionFailed) as caught:
        await s.h.sync()

    assert "MATRIX_HOMESERVER_URL=http://localhost:8008" in str(caught.value)
    assert "RETRY_BUDGET=30 s" in str(caught.value)
    assert s.sleeps() == BUDGET_WAITS and rule.hits == len(BUDGET_WAITS) + 1
    assert_kept(s.before, s.h.data_dir)
    assert mappings_on_disk(s.h.data_dir)[s.new]["created"] is True
    s.door.rules.clear()
    await s.converge()


LOST_REPLIES: dict[str, tuple[Effect, str]] = {
    "read_timeout": (read_timeout(), "RequestTimeout"),
    "connection_cut_mid_body": (cut_off(), "ConnectionFailed"),
    "truncated_json": (respond(200, raw=b'{"room_id": "!Ab'), "MalformedResponse"),
    "html_200": (respond(200, raw=HTML_PAGE, headers=HTML), "MalformedResponse"),
    "empty_200": (respond(200, raw=b""), "MalformedResponse"),
}


@pytest.mark.parametrize("lost", list(LOST_REPLIES))
async def test_room_created_but_reply_lost_is_found_again_not_duplicated(
    door_harness: DoorHarness, lost: str
) -> None:
    """The homeserver created the room; the client never learnt its id.

    A lost connection gets the agent one more try in the same sync, which finds the room by
    its tag; a garbled answer is left to the next sync.
    """
    s = await seed(*door_harness)
    then, error = LOST_REPLIES[lost]
    s.door.matrix("POST", CREATE_ROOM, after_server(s.h.homeserver, then))
    requests = create_room_requests(s)

    report = await s.h.sync()

    if error in ("RequestTimeout", "ConnectionFailed"):
        assert report.ok, report.failures
    else:
        only_failure(s, report, "room", error)
    assert create_room_requests(s) == requests + 1  # never repeated blindly
    orphan = tagged_rooms(s.h.homeserver)[s.new]
    assert len(orphan) == 1
    assert_kept(s.before, s.h.data_dir)
    await s.converge()
    assert mappings_on_disk(s.h.data_dir)[s.new]["room_id"] == orphan[0]


async def test_idempotent_read_with_lost_reply_is_retried(door_harness: DoorHarness) -> None:
    s = await seed(*door_harness)
    s.door.matrix("GET", SYNC, after_server(s.h.homeserver, read_timeout()))

    report = await s.h.sync()

    assert report.ok, report.failures
    assert s.sleeps() == BACKOFFS[:1]
    await s.converge()


async def test_register_reply_lost_is_recovered_in_the_same_sync(door_harness: DoorHarness) -> None:
    """Register is repeated; the repeat answers M_USER_IN_USE; the saved password logs in."""
    s = await seed(*door_harness)
    s.door.matrix("POST", r"/register$", after_server(s.h.homeserver, read_timeout()))

    report = await s.h.sync()

    assert report.ok, report.failures
    user = mappings_on_disk(s.h.data_dir)[s.new]["matrix_user_id"]
    assert s.h.homeserver.password(user) == mappings_on_disk(s.h.data_dir)[s.new]["matrix_password"]
    await s.converge()


# Rate limits -----------------------------------------------------------------------------------

LIMITED = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests"}


@pytest.mark.parametrize(
    ("body", "headers", "waits"),
    [
        ({**LIMITED, "retry_after_ms": 1500}, None, [1.5]),
        (LIMITED, None, [0.5]),
        (LIMITED, {"Retry-After": "7"}, [7.0]),
    ],
    ids=["retry_after_ms", "no_hint", "retry_after_header"],
)
async def test_rate_limited_create_room_waits_as_told_and_succeeds(
    door_harness: DoorHarness,
    body: dict[str, Any],
    headers: dict[str, str] | None,
    waits: list[float],
) -> None:
    s = await seed(*door_harness)
    s.h.homeserver.fail_next("createRoom", 429, body, headers)

    report = await s.h.sync()

    assert report.ok, report.failures
    assert s.sleeps() == waits
    assert len(tagged_rooms(s.h.homeserver)[s.new]) == 1
    await s.converge()


async def test_rate_limit_from_a_proxy_with_html_body_honours_retry_after(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    s.door.matrix(
        "POST", CREATE_ROOM, respond(429, raw=HTML_PAGE, headers={**HTML, "Retry-After": "3"})
    )

    report = await s.h.sync()

    assert report.ok, report.failures
    assert s.sleeps() == [3.0]
    await s.converge()


async def test_rate_limit_that_never_lifts_fails_the_agent(door_harness: DoorHarness) -> None:
    s = await seed(*door_harness)
    s.h.homeserver.fail_next("createRoom", 429, LIMITED, times=50)

    report = await s.h.sync()

    assert "M_LIMIT_EXCEEDED" in only_failure(s, report, "room", "MatrixRateLimited")
    # Rate limits back off on their own count (capped at 30 s) until the 120 s deadline.
    assert s.sleeps() == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert_kept(s.before, s.h.data_dir)
    s.h.homeserver.clear_faults()
    await s.converge()


async def test_rate_limit_longer_than_the_deadline_fails_at_once(door_harness: DoorHarness) -> None:
    s = await seed(*door_harness)
    s.h.homeserver.fail_next("createRoom", 429, {**LIMITED, "retry_after_ms": 600_000})

    report = await s.h.sync()

    only_failure(s, report, "room", "MatrixRateLimited")
    assert s.sleeps() == []
    await s.converge()


# Server errors ---------------------------------------------------------------------------------


def server_error(s: Seeded, path: str, status: int, html: bool, times: int = 1) -> None:
    if html:
        s.door.matrix("*", path, *[respond(status, raw=HTML_PAGE, headers=HTML)] * times)
    else:
        s.door.matrix("*", path, *[respond(status, M_UNKNOWN)] * times)


@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_on_create_room_fails_only_that_agent_without_repeating(
    door_harness: DoorHarness, status: int, html: bool
) -> None:
    s = await seed(*door_harness)
    server_error(s, CREATE_ROOM, status, html)

    report = await s.h.sync()

    reason = only_failure(s, report, "room", "MatrixServerError")
    assert f"HTTP {status}" in reason
    assert ("non-JSON error body" in reason) is html
    assert s.sleeps() == []  # a createRoom that may have happened is never repeated blindly
    assert tagged_rooms(s.h.homeserver).get(s.new) is None
    assert_kept(s.before, s.h.data_dir)
    await s.converge()


@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
@pytest.mark.parametrize("status", [502, 503])
async def test_gateway_error_on_an_idempotent_read_is_retried(
    door_harness: DoorHarness, status: int, html: bool
) -> None:
    s = await seed(*door_harness)
    server_error(s, SYNC, status, html)

    report = await s.h.sync()

    assert report.ok, report.failures
    assert s.sleeps() == BACKOFFS[:1]
    await s.converge()


async def test_internal_error_during_setup_raises_a_typed_error_and_changes_nothing(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    server_error(s, SYNC, 500, html=False)

    with pytest.raises(MatrixError) as caught:
        await s.h.sync()

    assert caught.value.status == 500 and caught.value.errcode == "M_UNKNOWN"
    assert s.sleeps() == []
    assert file_bytes(s.h.data_dir) == before
    await s.converge()


async def test_gateway_that_stays_down_raises_after_bounded_retries(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    # Down from the first request on (a server seen answering gets the retry budget instead).
    server_error(s, r"/v3/(account/whoami|sync)$", 503, html=True, times=5)

    with pytest.raises(MatrixError) as caught:
        await s.h.sync()

    assert caught.value.status == 503 and caught.value.errcode is None
    assert "non-JSON error body" in str(caught.value) and "Bad Gateway" in str(caught.value)
    assert s.sleeps() == BACKOFFS
    assert file_bytes(s.h.data_dir) == before
    await s.converge()


# Replies of the wrong shape --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{}, {"room_id": None}, {"room_id": 42}, {"room_id": ""}, ["!room"], None],
    ids=["no_room_id", "null_room_id", "int_room_id", "empty_room_id", "list", "null"],
)
async def test_create_room_reply_without_a_room_id_is_a_malformed_response(
    door_harness: DoorHarness, body: Any
) -> None:
    s = await seed(*door_harness)
    s.door.matrix("POST", CREATE_ROOM, respond(200, body))

    report = await s.h.sync()

    assert "room_id" in only_failure(s, report, "room", "MalformedResponse")
    assert_kept(s.before, s.h.data_dir)
    await s.converge()


async def test_register_reply_with_null_fields_fails_the_agent_user_step(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    s.h.homeserver.fail_next("register", 200, {"user_id": None, "access_token": None})

    report = await s.h.sync()

    only_failure(s, report, "user", "MalformedResponse")
    assert mappings_on_disk(s.h.data_dir)[s.new]["created"] is False
    assert_kept(s.before, s.h.data_dir)
    await s.converge()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (SYNC, {"next_batch": None}),
        (SYNC, {}),
        (SYNC, ["!a"]),
        (SYNC, {"next_batch": "s1", "rooms": {"join": ["!a"]}}),
        (SYNC, {"next_batch": "s1", "rooms": {"leave": "!a"}}),
    ],
    ids=[
        "next_batch_null",
        "next_batch_missing",
        "sync_list",
        "join_section_list",
        "leave_section_string",
    ],
)
async def test_setup_reply_of_the_wrong_shape_raises_malformed_response(
    door_harness: DoorHarness, path: str, body: Any
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    s.door.matrix("GET", path, respond(200, body))

    with pytest.raises(MalformedResponse):
        await s.h.sync()

    assert file_bytes(s.h.data_dir) == before
    await s.converge()


async def test_sync_with_junk_entries_is_tolerated(door_harness: DoorHarness) -> None:
    s = await seed(*door_harness)
    events = [None, 5, {"type": None}, {"type": "m.room.member", "state_key": 7}]
    junk = {
        "next_batch": "s1",
        "rooms": {"join": {"!x": None, "!y": {"state": {"events": events}}}},
    }
    s.door.matrix("GET", SYNC, respond(200, junk))

    report = await s.h.sync()

    assert report.ok, report.failures
    assert_kept(s.before, s.h.data_dir)
    await s.converge()


def letta_page(s: Seeded, *extra: Any) -> Effect:
    return respond(200, [agent.to_json() for agent in s.h.letta.agents()] + list(extra))


async def test_agent_records_without_id_or_name_are_reported_and_skipped(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    junk = [
        {"id": None, "name": "No id"},
        {"id": "agent-nameless", "name": None},
        {"id": "", "name": "Empty id"},
        {"id": 7, "name": "Number id"},
        {"name": "Missing id"},
        None,
        "agent-as-a-string",
    ]
    s.door.letta("GET", LIST_AGENTS, letta_page(s, *junk))

    report = await s.h.sync()

    assert report.ok, report.failures
    assert len(report.invalid_agents) == len(junk)
    assert any("agent-nameless" in reason for reason in report.invalid_agents)
    assert "agent-nameless" not in mappings_on_disk(s.h.data_dir)
    assert_kept(s.before, s.h.data_dir)
    await s.converge()


async def test_mapped_agent_listed_without_a_name_keeps_its_mapping(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    ada = s.old[0]
    records = [a.to_json() for a in s.h.letta.agents()]
    records[0]["name"] = None
    s.door.letta("GET", LIST_AGENTS, respond(200, records))

    report = await s.h.sync()

    assert any(ada in reason for reason in report.invalid_agents)
    assert mappings_on_disk(s.h.data_dir)[ada]["agent_name"] == "Ada"
    assert s.h.homeserver.displayname(s.before[ada]["matrix_user_id"]) == "Ada"
    assert_kept(s.before, s.h.data_dir)
    await s.converge()


@pytest.mark.parametrize(
    "effect",
    [
        respond(200, None),
        respond(200, {"data": None}),
        respond(200, {"agents": []}),
        respond(200, "agents"),
        respond(200, raw=b"<!doctype html><title>Letta</title>", headers=HTML),
        respond(200, raw=b'[{"id": "agent-1", "na'),
    ],
    ids=["null", "data_null", "wrong_key", "string", "html", "truncated"],
)
async def test_agent_listing_of_the_wrong_shape_is_a_configuration_error(
    door_harness: DoorHarness, effect: Effect
) -> None:
    """A listing that is not Letta's means LETTA_API_URL points elsewhere: exit 2, not a report."""
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    s.door.letta("GET", LIST_AGENTS, effect)

    with pytest.raises(ConfigError, match="does not answer like a Letta server"):
        await s.h.sync()

    assert file_bytes(s.h.data_dir) == before
    await s.converge()


# Expired tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "bot"])
async def test_core_token_expired_between_syncs_logs_in_once_and_persists(
    door_harness: DoorHarness, who: str
) -> None:
    s = await seed(*door_harness)
    hs, user = s.h.homeserver, s.h.admin_id if who == "admin" else s.h.bot_id
    old = tokens_on_disk(s.h.data_dir)[user]["access_token"]
    hs.expire_token(old)
    logins, devices = hs.logins, len(hs.devices(user))

    report = await s.h.sync()

    assert report.ok, report.failures
    assert hs.logins == logins + 1 and len(hs.devices(user)) == devices + 1
    new = tokens_on_disk(s.h.data_dir)[user]["access_token"]
    assert new != old
    await s.converge()
    assert hs.logins == logins + 1  # the new token is re-used, not replaced
    assert tokens_on_disk(s.h.data_dir)[user]["access_token"] == new


async def test_agent_token_expiring_mid_sync_logs_in_once_and_persists(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    ada, hs = s.old[0], s.h.homeserver
    user = s.before[ada]["matrix_user_id"]
    old = tokens_on_disk(s.h.data_dir)[user]["access_token"]
    s.h.letta.rename(ada, "Ada Lovelace")
    # The token expires as the agent sets its new display name (the rename's first request).
    s.door.matrix(
        "PUT", r"/profile/.+/displayname", call_then_fall_through(lambda _: hs.expire_token(old))
    )
    logins = hs.logins

    report = await s.h.sync()

    assert report.ok, report.failures
    assert report.renamed == [ada]
    assert hs.logins == logins + 1
    assert tokens_on_disk(s.h.data_dir)[user]["access_token"] != old
    assert hs.state(s.before[ada]["room_id"], "m.room.name") == {"name": "Ada Lovelace"}
    await s.converge()
    assert hs.logins == logins + 1


async def test_admin_token_expiring_while_agents_run_concurrently_logs_in_once(
    tmp_path: Path,
) -> None:
    h, door = harness_with_door(tmp_path / "data", interleave=True)
    s = await seed(h, door)
    for n in range(5):
        h.letta.add_agent(f"Extra {n}")
    token = tokens_on_disk(h.data_dir)[h.admin_id]["access_token"]
    door.matrix(
        "POST", CREATE_ROOM, call_then_fall_through(lambda _: h.homeserver.expire_token(token))
    )
    logins = h.homeserver.logins

    report = await h.sync()

    assert report.ok, report.failures
    assert h.homeserver.logins == logins + 1
    await s.converge()


# A whole server down ---------------------------------------------------------------------------


async def test_letta_down_while_matrix_is_up_is_reported_and_changes_nothing(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    s.door.letta("*", "", refuse(), forever=True)

    report = await s.h.sync()

    assert not report.ok and report.failures == []
    assert report.letta_error is not None
    assert report.letta_error.startswith(
        "cannot reach Letta (LETTA_API_URL=http://localhost:8283): ConnectionFailed: GET"
    )
    assert s.sleeps() == BACKOFFS[:2]
    assert report.removed_from_letta == []
    assert file_bytes(s.h.data_dir) == before
    s.door.rules.clear()
    await s.converge()


async def test_letta_answering_503_html_is_reported_after_bounded_retries(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    s.door.letta(
        "GET", LETTA_AGENT_LISTING, respond(503, raw=HTML_PAGE, headers=HTML), forever=True
    )

    report = await s.h.sync()

    assert report.letta_error is not None and "Letta HTTP 503" in report.letta_error
    assert "non-JSON error body" in report.letta_error
    assert s.sleeps() == BACKOFFS
    assert file_bytes(s.h.data_dir) == before
    s.door.rules.clear()
    await s.converge()


@pytest.mark.parametrize("fault", [refuse, connect_timeout], ids=["refused", "connect_timeout"])
async def test_matrix_down_while_letta_is_up_raises_a_typed_error(
    door_harness: DoorHarness, fault: Any
) -> None:
    s = await seed(*door_harness)
    before = file_bytes(s.h.data_dir)
    s.door.matrix("*", "", fault(), forever=True)

    with pytest.raises((ConnectionFailed, RequestTimeout)) as caught:
        await s.h.sync()

    assert "http://localhost:8008/_matrix/client/v3/" in str(caught.value)
    assert caught.value.maybe_sent is False
    assert "MATRIX_HOMESERVER_URL" in str(caught.value)
    assert s.sleeps() == BACKOFFS[:2]
    assert file_bytes(s.h.data_dir) == before
    s.door.rules.clear()
    await s.converge()


# History import --------------------------------------------------------------------------------


async def test_lost_send_replies_deliver_each_history_message_once(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    texts = s.history[s.new]
    lost = after_server(s.h.homeserver, read_timeout())
    s.door.matrix("PUT", r"/send/m\.room\.message/", lost, lost)

    report = await s.h.sync()

    assert report.ok, report.failures
    assert report.history_imported == {s.new: 3}
    room = mappings_on_disk(s.h.data_dir)[s.new]["room_id"]
    assert imported_history(s.h.homeserver, room) == texts
    await s.converge()


async def test_failed_history_import_is_retried_on_the_next_sync(
    door_harness: DoorHarness,
) -> None:
    s = await seed(*door_harness)
    texts = s.history[s.new]
    s.h.letta.fail_next("list_messages", 500, {"detail": "database is restarting"})

    first = await s.h.sync()
    only_failure(s, first, "history", "LettaError")
    await s.converge()

    room = mappings_on_disk(s.h.data_dir)[s.new]["room_id"]
    assert imported_history(s.h.homeserver, room) == texts
