"""Agent users and rooms: discovery, creation, renames, repairs, partial failure, history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.sync.history import spoken_text
from app.testing.harness import SyncHarness
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio


def stored(h: SyncHarness) -> dict[str, Any]:
    return dict(json.loads((h.data_dir / "agent_user_mappings.json").read_text()))


@pytest.mark.parametrize("shape", ["list", "data"])
async def test_agents_are_discovered_across_pages_in_both_shapes(tmp_path: Any, shape: str) -> None:
    h = SyncHarness(tmp_path / "data", letta=FakeLetta(shape=shape))  # type: ignore[arg-type]
    ids = [h.letta.add_agent(f"Paged {n}") for n in range(7)]

    report = await h.sync(letta_page_size=3)

    assert report.agents_seen == 7
    assert set(stored(h)) == set(ids)
    # 3, 3, 1: the "data" shape says has_more=false; for a bare list, a short page that reaches
    # Letta's count ends the walk.
    assert h.letta.requests_by_kind["list_agents"] == 3
    assert h.letta.requests_by_kind["count_agents"] == 1


async def test_agent_user_has_a_stable_localpart_a_strong_password_and_its_name(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Helper", agent_id="agent-3f2a9c1e-0b7d-4e5f-9a8b-1c2d3e4f5a6b")

    await h.sync()

    mapping = stored(h)[agent_id]
    assert mapping["matrix_user_id"] == "@agent_3f2a9c1e_0b7d_4e5f_9a8b_1c2d3e4f5a6b:localhost"
    assert len(mapping["matrix_password"]) >= 32
    assert h.homeserver.password(mapping["matrix_user_id"]) == mapping["matrix_password"]
    assert h.homeserver.displayname(mapping["matrix_user_id"]) == "Helper"


async def test_core_users_are_registered_when_missing_and_logged_in_when_present(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.homeserver.register_user("admin", "admin-secret-password")

    await h.sync(mcp_username="mcp", mcp_password="mcp-secret-password")

    assert h.homeserver.has_user(h.bot_id)
    assert h.homeserver.has_user("@mcp:localhost")
    assert h.homeserver.requests_by_kind["register_available"] == 3
    assert (
        h.homeserver.logins == 1
    )  # the pre-existing admin; everyone else got a token by registering


async def test_wrong_core_password_is_a_clear_configuration_error(
    sync_harness: SyncHarness,
) -> None:
    from app import ConfigError

    sync_harness.homeserver.register_user("admin", "another-password")
    with pytest.raises(ConfigError, match="MATRIX_ADMIN_PASSWORD"):
        await sync_harness.sync()


async def test_user_left_over_by_a_crash_is_adopted_with_the_saved_password(
    sync_harness: SyncHarness,
) -> None:
    """The password was saved, the account registered, then the process died."""
    h = sync_harness
    await h.sync()  # the space exists, so the next createRoom is the agent's
    agent_id = h.letta.add_agent("Survivor")
    h.homeserver.fail_next("createRoom", 500, {"errcode": "M_UNKNOWN", "error": "boom"})
    first = await h.sync()
    assert [f.step for f in first.failures] == ["room"]
    user = stored(h)[agent_id]["matrix_user_id"]

    second = await h.sync()

    assert second.ok, second.failures
    assert agent_id in second.rooms_created and not second.users_created
    assert h.homeserver.members(stored(h)[agent_id]["room_id"])[user] == "join"


async def test_taken_localpart_with_unknown_password_is_reported_not_hijacked(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    squatted = h.letta.add_agent("Squatted", agent_id="agent-squat")
    fine = h.letta.add_agent("Fine")
    h.homeserver.register_user("agent_squat", "someone-elses-password")

    report = await h.sync()

    assert [(f.agent_id, f.step) for f in report.failures] == [(squatted, "user")]
    assert "M_FORBIDDEN" in report.failures[0].reason
    assert stored(h)[fine]["room_created"] is True
    assert stored(h)[squatted]["created"] is False


async def test_one_failing_create_room_does_not_stop_the_others(sync_harness: SyncHarness) -> None:
    h = sync_harness
    await h.sync()  # the space exists, so the next createRoom is an agent's
    ids = [h.letta.add_agent(f"P{n}") for n in range(4)]
    h.homeserver.fail_next("createRoom", 400, {"errcode": "M_UNKNOWN", "error": "room says no"})

    report = await h.sync()

    assert len(report.failures) == 1
    failure = report.failures[0]
    assert failure.step == "room" and "room says no" in failure.reason
    in_order = [a for a in ids if stored(h)[a]["room_created"]]
    assert len(in_order) == 3 and failure.agent_id not in in_order
    assert (await h.sync()).ok
    assert all(stored(h)[a]["room_created"] for a in ids)


async def test_failed_user_creation_is_retried_on_the_next_sync(sync_harness: SyncHarness) -> None:
    h = sync_harness
    await h.sync()  # core users registered; the next register is the agent's
    agent_id = h.letta.add_agent("Retry me")
    h.homeserver.fail_next("register", 400, {"errcode": "M_UNKNOWN", "error": "not now"})

    first = await h.sync()

    assert [(f.agent_id, f.step) for f in first.failures] == [(agent_id, "user")]
    assert stored(h)[agent_id]["created"] is False
    password = stored(h)[agent_id]["matrix_password"]

    second = await h.sync()

    assert second.ok and second.users_created == [agent_id]
    assert stored(h)[agent_id]["matrix_password"] == password
    assert h.homeserver.password(stored(h)[agent_id]["matrix_user_id"]) == password


async def test_rename_updates_room_name_display_name_and_mapping(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Before")
    await h.sync()
    h.letta.rename(agent_id, "After")

    report = await h.sync()

    mapping = stored(h)[agent_id]
    assert report.renamed == [agent_id]
    assert mapping["agent_name"] == "After"
    assert h.homeserver.state(mapping["room_id"], "m.room.name") == {"name": "After"}
    assert h.homeserver.displayname(mapping["matrix_user_id"]) == "After"


async def test_room_name_template_is_applied(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Templated")

    await h.sync(room_name_template="Letta: {name}")

    room = stored(h)[agent_id]["room_id"]
    assert h.homeserver.state(room, "m.room.name") == {"name": "Letta: Templated"}


async def test_user_without_room_gets_one(sync_harness: SyncHarness) -> None:
    h = sync_harness
    await h.sync()
    agent_id = h.letta.add_agent("Roomless")
    h.homeserver.fail_next("createRoom", 400, {"errcode": "M_UNKNOWN", "error": "no"})
    first = await h.sync()
    assert stored(h)[agent_id]["created"] and not stored(h)[agent_id]["room_id"]
    assert first.failures

    report = await h.sync()

    assert report.rooms_created == [agent_id] and report.ok


async def test_deleted_room_is_replaced_and_dropped_from_the_space(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Phoenix")
    first = await h.sync()
    old_room = stored(h)[agent_id]["room_id"]
    h.homeserver.delete_room(old_room)

    report = await h.sync()

    new_room = stored(h)[agent_id]["room_id"]
    assert report.ok and agent_id in report.repaired and new_room != old_room
    assert h.homeserver.state(first.space_id or "", "m.space.child", new_room) is not None
    assert not h.homeserver.state(first.space_id or "", "m.space.child", old_room)


async def test_room_missing_from_the_space_is_added_back(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Stray")
    first = await h.sync()
    room = stored(h)[agent_id]["room_id"]
    space = first.space_id or ""
    h.homeserver.set_state(space, "m.space.child", {}, state_key=room, sender=h.admin_id)

    report = await h.sync()

    assert report.repaired == [agent_id]
    assert h.homeserver.state(space, "m.space.child", room)["via"] == ["localhost"]
    assert stored(h)[agent_id]["room_id"] == room


async def test_agents_removed_from_letta_are_reported_and_kept(sync_harness: SyncHarness) -> None:
    h = sync_harness
    gone, kept = h.letta.add_agent("Gone"), h.letta.add_agent("Kept")
    await h.sync()
    h.letta.remove(gone)

    report = await h.sync()

    assert report.removed_from_letta == [gone]
    assert set(stored(h)) == {gone, kept}


async def test_empty_agent_list_with_mappings_is_a_letta_failure(sync_harness: SyncHarness) -> None:
    h = sync_harness
    only = h.letta.add_agent("Only")
    await h.sync()
    before = stored(h)
    h.letta.remove(only)

    report = await h.sync()

    assert report.letta_error and not report.ok
    assert report.removed_from_letta == []
    assert stored(h) == before


async def test_history_of_a_new_room_is_imported_by_the_agent(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Historian")
    h.letta.add_message(agent_id, "tool_return_message", "orphan")
    h.letta.add_message(agent_id, "user_message", "hello")
    h.letta.add_message(agent_id, "reasoning_message", "thinking")
    h.letta.add_message(agent_id, "tool_call_message", "")
    h.letta.add_message(
        agent_id,
        "assistant_message",
        [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}],
    )

    report = await h.sync()

    mapping = stored(h)[agent_id]
    timeline = h.homeserver.room(mapping["room_id"]).timeline
    assert [(e.sender, e.content["ai.letta.role"], spoken_text(e.content)) for e in timeline] == [
        (mapping["matrix_user_id"], "user", "hello"),
        (mapping["matrix_user_id"], "assistant", "hi\nthere"),
    ]
    assert timeline[0].content["body"] == "User wrote:\n> hello"
    assert all(e.content["m.letta_historical"] is True for e in timeline)
    assert report.history_imported == {agent_id: 2}
    await h.sync()
    assert len(h.homeserver.room(mapping["room_id"]).timeline) == 2


async def test_history_import_can_be_disabled_and_limited(sync_harness: SyncHarness) -> None:
    h = sync_harness
    quiet, brief = h.letta.add_agent("Quiet"), h.letta.add_agent("Brief")
    for n in range(5):
        h.letta.add_message(quiet, "user_message", f"q{n}")
        h.letta.add_message(brief, "user_message", f"b{n}")

    await h.sync(history_import_limit=0)
    assert h.homeserver.room(stored(h)[quiet]["room_id"]).timeline == []

    h2 = SyncHarness(h.data_dir.parent / "other", letta=h.letta)
    await h2.sync(history_import_limit=2)
    timeline = h2.homeserver.room(stored(h2)[brief]["room_id"]).timeline
    bodies = [spoken_text(e.content) for e in timeline]
    assert bodies == ["b3", "b4"]


async def test_configured_people_are_invited_to_every_agent_room(sync_harness: SyncHarness) -> None:
    h = sync_harness
    h.homeserver.register_user("alice", "pw")
    agent_id = h.letta.add_agent("Social")

    await h.sync(invite_users=("@alice:localhost",))

    room = stored(h)[agent_id]["room_id"]
    assert h.homeserver.members(room)["@alice:localhost"] == "invite"
    assert stored(h)[agent_id]["invitation_status"]["@alice:localhost"] == "invited"


async def test_rename_of_an_agent_whose_room_vanished_still_converges(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Before")
    await h.sync()
    h.homeserver.delete_room(stored(h)[agent_id]["room_id"])
    h.letta.rename(agent_id, "After")

    report = await h.sync()

    mapping = stored(h)[agent_id]
    assert report.ok, report.failures
    assert report.renamed == [agent_id] and report.rooms_created == [agent_id]
    assert h.homeserver.state(mapping["room_id"], "m.room.name") == {"name": "After"}
    assert h.homeserver.displayname(mapping["matrix_user_id"]) == "After"


async def test_an_interrupted_history_import_resumes_without_duplicates(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Chatty")
    for text in ("one", "two", "three"):
        h.letta.add_message(agent_id, "user_message", text)
    h.homeserver.fail_next("send", 500, {"errcode": "M_UNKNOWN", "error": "hiccup"}, after=1)

    first = await h.sync()

    assert [(f.agent_id, f.step) for f in first.failures] == [(agent_id, "history")]
    second = await h.sync()

    room = stored(h)[agent_id]["room_id"]
    assert second.ok and second.history_imported == {agent_id: 2}
    timeline = h.homeserver.room(room).timeline
    assert [spoken_text(e.content) for e in timeline] == ["one", "two", "three"]
    assert "history_import_pending" not in stored(h)[agent_id]


async def test_an_agent_deleted_under_the_listing_cursor_marks_no_live_agent_removed(
    sync_harness: SyncHarness,
) -> None:
    """Letta 0.16.8 answers an `after` naming an agent deleted meanwhile with the first page.
    A walk sent back there saw only part of the list: it is walked again, never taken whole."""
    h = sync_harness
    ids = [h.letta.add_agent(f"Listed {n}") for n in range(5)]
    await h.sync(letta_page_size=2)
    deleted: list[str] = []
    cursors: list[str] = []

    def delete_the_cursor_agent(request: httpx.Request) -> None:
        cursor = request.url.params.get("after")
        if cursor is not None:
            cursors.append(cursor)
        if len(cursors) == 2 and not deleted:  # the last agent of page 2, before page 3
            h.letta.remove(cursor)
            deleted.append(cursor)

    h.override("list_agents", delete_the_cursor_agent)

    report = await h.sync(letta_page_size=2)

    assert deleted and report.removed_from_letta == deleted
    flagged = {a for a, m in stored(h).items() if m.get("removed_from_letta")}
    assert flagged == set(deleted) and set(ids) - flagged == set(ids) - set(deleted)
    assert report.ok and report.listing_incomplete is None


async def test_a_listing_that_stays_incomplete_marks_nothing_removed_and_says_so(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    [h.letta.add_agent(f"Listed {n}") for n in range(5)]
    await h.sync(letta_page_size=2)
    h.letta.fail_next("count_agents", 200, 9, times=2)  # a count the listing never reaches

    report = await h.sync(letta_page_size=2)

    assert not report.ok and report.listing_incomplete == "Letta counts 9 agents but listed 5"
    assert report.removed_from_letta == []
    assert not any(m.get("removed_from_letta") for m in stored(h).values())
    assert (
        "Letta listing incomplete (Letta counts 9 agents but listed 5): no agent was marked "
        "removed; the next sync lists again"
    ) in report.summary().splitlines()


async def test_a_newer_letta_server_syncs_too(tmp_path: Any) -> None:
    """What the letta-client SDK describes of servers after 0.16.8: no count route, and lean
    listings by default."""
    h = SyncHarness(tmp_path / "data", letta=FakeLetta(version="1.x"))
    ids = [h.letta.add_agent(f"Newer {n}") for n in range(5)]
    h.letta.converse(ids[0], "question", "answer")

    report = await h.sync(letta_page_size=2)

    assert report.ok and report.listing_incomplete is None, report.failures
    assert set(stored(h)) == set(ids)
    room = stored(h)[ids[0]]["room_id"]
    assert [spoken_text(e.content) for e in h.homeserver.room(room).timeline] == [
        "question",
        "answer",
    ]
    h.letta.remove(ids[1])
    again = await h.sync(letta_page_size=2)
    assert again.removed_from_letta == [ids[1]]


async def test_a_write_the_homeserver_accepts_but_does_not_hold_is_a_failure(
    sync_harness: SyncHarness,
) -> None:
    """Something in front of the homeserver answers 200 to state writes that never land: the
    admin's view, read once more at the end, shows it, and the rename is not reported done."""
    h = sync_harness
    agent_id = h.letta.add_agent("Before")
    await h.sync()
    h.letta.rename(agent_id, "After")
    h.override("put_state", httpx.Response(200, json={"event_id": "$swallowed"}))

    report = await h.sync()

    assert report.renamed == [] and not report.ok
    (failure,) = report.failures
    assert failure.step == "rename" and "m.room.name" in failure.reason
    assert "does not hold it" in failure.reason
    h.override("put_state", None)
    again = await h.sync()
    assert again.ok and again.repaired == [agent_id], again.failures
    room = stored(h)[agent_id]["room_id"]
    assert h.homeserver.state(room, "m.room.name") == {"name": "After"}


async def test_a_space_listing_the_homeserver_accepts_but_does_not_hold_is_a_failure(
    sync_harness: SyncHarness,
) -> None:
    """The space's `m.space.child` for a room is confirmed like the room's own state: a room
    put back into the space only in an answer is not reported repaired."""
    h = sync_harness
    agent_id = h.letta.add_agent("Listed")
    first = await h.sync()
    space, room = str(first.space_id), stored(h)[agent_id]["room_id"]
    h.homeserver.set_state(space, "m.space.child", {}, state_key=room, sender=h.admin_id)
    h.override("put_state", httpx.Response(200, json={"event_id": "$swallowed"}))

    report = await h.sync()

    assert report.repaired == [] and agent_id not in report.actions
    (failure,) = report.failures
    assert failure.step == "space" and "m.space.child" in failure.reason
    h.override("put_state", None)
    again = await h.sync()
    assert again.ok and again.repaired == [agent_id], again.failures
    assert again.actions == {agent_id: ["space: m.space.child as " + h.admin_id]}
    assert h.homeserver.state(space, "m.space.child", room) not in (None, {})


async def test_a_history_limit_of_one_imports_the_last_line(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Terse")
    for n in range(3):
        h.letta.add_message(agent_id, "user_message", f"t{n}")

    await h.sync(history_import_limit=1)

    timeline = h.homeserver.room(stored(h)[agent_id]["room_id"]).timeline
    assert [spoken_text(e.content) for e in timeline] == ["t2"]


async def synced_then_left(h: SyncHarness, name: str, user_id: str) -> tuple[str, str]:
    """An agent synced, then `user_id` out of its room: (agent id, room id)."""
    agent_id = h.letta.add_agent(name)
    await h.sync()
    room_id = str(stored(h)[agent_id]["room_id"])
    h.homeserver.force_leave(room_id, user_id)
    return agent_id, room_id


async def test_an_admin_that_cannot_get_back_into_the_room_fails_the_agent_naming_both(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id, room_id = await synced_then_left(h, "Locked out", h.admin_id)
    refused = {"errcode": "M_FORBIDDEN", "error": "not allowed"}
    h.homeserver.fail_next("join", 403, refused, times=2)  # before and after the invitation

    report = await h.sync()

    [failure] = report.failures
    assert failure.agent_id == agent_id
    assert failure.reason.endswith(f"could not join {h.admin_id} to room {room_id}")
    assert stored(h)[agent_id]["invitation_status"][h.admin_id] == "failed"


async def test_a_bot_that_left_alone_is_brought_back_while_the_admin_stays(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id, room_id = await synced_then_left(h, "Bot left", h.bot_id)

    report = await h.sync()

    assert report.ok and report.repaired == [agent_id], report
    assert h.homeserver.members(room_id)[h.bot_id] == "join"
    assert h.homeserver.members(room_id)[h.admin_id] == "join"


async def test_a_user_registered_before_a_crash_is_finished_with_its_token_not_a_login(
    sync_harness: SyncHarness,
) -> None:
    """The last run registered the agent (its token is on file) and died before it recorded
    the user as made: this run finishes the user with that token. A login would make a
    device, and the report would count the user as created a second time."""
    h = sync_harness
    agent_id = h.letta.add_agent("Interrupted")
    await h.sync()
    path = h.data_dir / "agent_user_mappings.json"
    data = json.loads(path.read_text())
    data[agent_id]["created"] = False
    path.write_text(json.dumps(data))
    (h.data_dir / "agent_user_mappings.journal").unlink(missing_ok=True)
    logins = h.homeserver.logins

    report = await h.sync()

    assert report.ok and report.users_created == [], report
    assert h.homeserver.logins == logins and stored(h)[agent_id]["created"] is True
