"""The Letta Agents space: creation, persistence, re-validation, recreation and migration."""

from __future__ import annotations

import json

import pytest

from app import AgentMapping
from app.errors import ConfigError, MatrixError
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio


async def test_space_is_created_once_with_the_required_settings(sync_harness: SyncHarness) -> None:
    h = sync_harness
    person = "@alice:localhost"
    h.homeserver.register_user("alice", "alice-password")

    report = await h.sync(invite_users=(person,))

    hs, space = h.homeserver, report.space_id
    assert space is not None and report.space_created
    assert hs.state(space, "m.room.create")["type"] == "m.space"
    assert hs.state(space, "m.room.name") == {"name": "Letta Agents"}
    assert hs.state(space, "m.room.topic") == {"topic": "Rooms of the Letta agents"}
    assert hs.state(space, "m.room.join_rules")["join_rule"] == "invite"
    assert hs.state(space, "m.room.guest_access") == {"guest_access": "forbidden"}
    assert hs.state(space, "m.room.history_visibility") == {"history_visibility": "shared"}
    assert hs.state(space, "m.room.power_levels")["events"]["m.space.child"] == 50
    assert hs.members(space) == {h.admin_id: "join", h.bot_id: "join", person: "invite"}


async def test_a_second_service_instance_reuses_the_stored_space(sync_harness: SyncHarness) -> None:
    first = await sync_harness.sync()
    rooms = set(sync_harness.homeserver.room_ids())

    second = await sync_harness.sync()

    assert second.space_id == first.space_id and not second.space_created
    assert set(sync_harness.homeserver.room_ids()) == rooms
    stored = json.loads((sync_harness.data_dir / "letta_space_config.json").read_text())
    assert stored["space_id"] == first.space_id


async def test_a_vanished_space_is_recreated_and_every_room_migrated(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    ids = [h.letta.add_agent(f"A{n}") for n in range(3)]
    first = await h.sync()
    assert first.space_id is not None
    h.homeserver.delete_room(first.space_id)

    report = await h.sync()

    assert report.space_created and report.space_id != first.space_id
    assert sorted(report.migrated) == sorted(ids) and report.migrated_count == 3
    for agent_id in ids:
        room = stored_mappings(h)[agent_id]["room_id"]
        assert h.homeserver.state(report.space_id, "m.space.child", room)["via"] == ["localhost"]
        assert h.homeserver.state(room, "m.space.parent", report.space_id)["canonical"] is True


async def test_existing_rooms_without_a_space_are_migrated_into_it(
    sync_harness: SyncHarness,
) -> None:
    """An old deployment: users and rooms exist, mapped in the old file, but no space yet."""
    h = sync_harness
    hs = h.homeserver
    admin = hs.register_user("admin", "admin-secret-password")
    bot = hs.register_user("letta", "bot-secret-password")
    h.data_dir.mkdir(parents=True)
    old_file = {}
    for n in range(2):
        agent_id = h.letta.add_agent(f"Legacy {n}")
        localpart = agent_id.replace("-", "_")
        user = hs.register_user(localpart, f"pw{n}")
        room = hs.create_room(
            user, {"name": f"Legacy {n}", "preset": "trusted_private_chat", "invite": [admin, bot]}
        )
        hs.force_join(room, admin)
        hs.force_join(room, bot)
        hs.set_state(room, "m.room.name", {"name": f"Legacy {n}"}, sender=user)
        hs.force_join(room, user)
        old_file[agent_id] = AgentMapping(
            agent_id,
            f"Legacy {n}",
            user,
            f"pw{n}",
            True,
            room,
            True,
            {admin: "joined", bot: "joined"},
        ).to_json()
    (h.data_dir / "agent_user_mappings.json").write_text(json.dumps(old_file))
    rooms_before = set(hs.room_ids())

    report = await h.sync()

    assert report.ok, report.failures
    assert report.migrated_count == 2 and not report.rooms_created
    assert set(hs.room_ids()) - rooms_before == {report.space_id}
    for entry in old_file.values():
        room = entry["room_id"]
        assert hs.state(report.space_id, "m.space.child", room) is not None
        assert hs.state(room, "m.space.parent", report.space_id) is not None


async def test_rooms_of_the_old_service_get_their_link_and_renames_through_the_agent(
    sync_harness: SyncHarness,
) -> None:
    """The older service made each room as the agent user with `private_chat` and invited the
    admin, who holds power 0 there: the agent user, the room's creator, writes its state."""
    h = sync_harness
    hs = h.homeserver
    admin = hs.register_user("admin", "admin-secret-password")
    bot = hs.register_user("letta", "bot-secret-password")
    h.data_dir.mkdir(parents=True)
    agent_id = h.letta.add_agent("Legacy")
    user = hs.register_user(agent_id.replace("-", "_"), "pw")
    room = hs.create_room(
        user, {"name": "Legacy", "preset": "private_chat", "invite": [admin, bot]}
    )
    hs.force_join(room, admin)
    hs.force_join(room, bot)
    mapping = AgentMapping(
        agent_id, "Legacy", user, "pw", True, room, True, {admin: "joined", bot: "joined"}
    )
    (h.data_dir / "agent_user_mappings.json").write_text(json.dumps({agent_id: mapping.to_json()}))

    report = await h.sync()
    h.letta.rename(agent_id, "Legacy renamed")
    renamed = await h.sync()

    assert report.ok and report.migrated == [agent_id], report.failures
    assert hs.state(room, "m.space.parent", report.space_id)["via"] == ["localhost"]
    assert hs.state_events(room, "m.space.parent")[0].sender == user
    assert renamed.ok and renamed.renamed == [agent_id], renamed.failures
    assert hs.state(room, "m.room.name") == {"name": "Legacy renamed"}


def stored_mappings(h: SyncHarness) -> dict[str, dict[str, object]]:
    return dict(json.loads((h.data_dir / "agent_user_mappings.json").read_text()))


async def test_a_bot_that_left_the_space_is_joined_again(sync_harness: SyncHarness) -> None:
    first = await sync_harness.sync()
    space = first.space_id or ""
    sync_harness.homeserver.force_leave(space, sync_harness.bot_id)

    report = await sync_harness.sync()

    assert report.ok and report.space_id == space
    assert sync_harness.homeserver.members(space)[sync_harness.bot_id] == "join"


async def test_the_space_name_is_configurable(sync_harness: SyncHarness) -> None:
    report = await sync_harness.sync(space_name="Our Agents")

    assert sync_harness.homeserver.state(report.space_id or "", "m.room.name") == {
        "name": "Our Agents"
    }
    assert (
        json.loads((sync_harness.data_dir / "letta_space_config.json").read_text())["name"]
        == "Our Agents"
    )


async def test_a_lost_data_directory_stops_the_sync_with_one_message_and_changes_nothing(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.letta.add_agent("Remembered")
    await h.sync()
    rooms_before = set(h.homeserver.room_ids())
    empty = h.data_dir.parent / "new-empty-dir"

    with pytest.raises(ConfigError) as stopped:
        await h.sync(data_dir=empty)

    # The agents' passwords are in the lost directory: say so once, not once per agent.
    assert f"MATRIX_DATA_DIR={empty}" in str(stopped.value)
    assert "existing deployment" in str(stopped.value)
    assert set(h.homeserver.room_ids()) == rooms_before
    assert json.loads((empty / "agent_user_mappings.json").read_text()) == {}


async def test_people_added_to_the_invite_list_later_are_invited_everywhere(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.homeserver.register_user("alice", "pw")
    agent_id = h.letta.add_agent("Existing")
    first = await h.sync()

    report = await h.sync(invite_users=("@alice:localhost",))
    again = await h.sync(invite_users=("@alice:localhost",))

    room = stored_mappings(h)[agent_id]["room_id"]
    assert report.ok and again.ok
    assert h.homeserver.members(first.space_id or "")["@alice:localhost"] == "invite"
    assert h.homeserver.members(room)["@alice:localhost"] == "invite"
    assert h.homeserver.requests_by_kind["invite"] == 2  # once each, not every sync


async def test_a_recreated_space_leaves_no_stale_parent_in_the_rooms(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Orphan")
    first = await h.sync()
    h.homeserver.delete_room(first.space_id or "")

    second = await h.sync()

    room = stored_mappings(h)[agent_id]["room_id"]
    assert h.homeserver.state(room, "m.space.parent", second.space_id or "")["canonical"] is True
    assert not h.homeserver.state(room, "m.space.parent", first.space_id or "")


async def test_a_space_creation_that_failed_is_marked_in_flight_then_cleared_once_made(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    path = h.data_dir / "letta_space_config.json"
    h.homeserver.fail_next("createRoom", 400, {"errcode": "M_UNKNOWN", "error": "no"})

    with pytest.raises(MatrixError):
        await h.sync()
    in_flight = json.loads(path.read_text())
    report = await h.sync()
    made = json.loads(path.read_text())

    started = in_flight.pop("creation_started_at")
    assert isinstance(started, float)
    assert in_flight == {"space_id": None, "created_at": None, "name": "Letta Agents"}
    assert report.space_created and made["space_id"] == report.space_id
    assert "creation_started_at" not in made and made["name"] == "Letta Agents"
