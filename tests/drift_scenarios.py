"""Drift made by hand on the homeserver, found by the next sync and repaired (or reported):
run with the other shared scenarios by the respx tier (tests/sync/test_scenarios.py) and the
Synapse tier (tests/contract/test_scenarios_synapse.py). Each drift is made through the
client API, as a person (or an agent's own client) would make it.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from app import SyncReport
from app.http.transport import Transport
from app.sync.rooms import AGENT_TAG
from app.sync.space import SPACE_TAG
from app.testing.counting import StatusCounter

from scenarios import assert_agent_in_order
from worlds import World, mappings

V3 = "/_matrix/client/v3"
# A steady sync's budget of homeserver requests, whatever the number of agents.
STEADY_REQUESTS = 3


def room_path(room_id: str, *rest: str) -> str:
    return "/".join([f"{V3}/rooms", room_id, *rest])


def room_of(world: World, agent_id: str) -> str:
    return str(mappings(world)[agent_id]["room_id"])


def user_of(world: World, agent_id: str) -> str:
    return str(mappings(world)[agent_id]["matrix_user_id"])


async def counted(world: World, **overrides: Any) -> tuple[SyncReport, list[str]]:
    """A sync, and the requests it sent to the homeserver."""
    counters: list[StatusCounter] = []

    def wrap(transport: Transport) -> Transport:
        counters.append(StatusCounter(transport))
        return counters[-1]

    report = await world.sync(wrap=wrap, **overrides)
    return report, counters[0].requests_to(world.homeserver_url)


def space_links(world: World, space_id: str, room_id: str) -> tuple[bool, bool]:
    """(the space lists the room, the room names the space)."""
    child = world.state(space_id, "m.space.child", room_id) or {}
    parent = world.state(room_id, "m.space.parent", space_id) or {}
    return bool(child.get("via")), bool(parent.get("via"))


async def steady_sync_makes_at_most_three_requests(world: World) -> None:
    for n in range(4):
        world.letta.add_agent(f"Steady {n}")
    await world.sync()
    await world.sync()  # reads what the first one changed

    report, requests = await counted(world)

    assert report.ok and not report.repaired and not report.rooms_created, report.failures
    assert len(requests) <= STEADY_REQUESTS, requests


async def people_who_joined_or_never_answered_cost_nothing(world: World) -> None:
    waiting, joiner, guest = (world.new_person(n) for n in ("waiting", "joiner", "guest"))
    people = {"invite_users": (waiting, joiner)}
    agents = [world.letta.add_agent(f"Crowded {n}") for n in range(3)]
    await world.sync(**people)
    for agent_id in agents:
        room = room_of(world, agent_id)
        world.act(joiner, "POST", room_path(room, "join"), {})
        world.act(joiner, "POST", room_path(room, "invite"), {"user_id": guest})
        world.act(guest, "POST", room_path(room, "join"), {})
    await world.sync(**people)

    report, requests = await counted(world, **people)

    assert report.ok and not report.repaired and not report.rooms_created, report.failures
    assert len(requests) <= STEADY_REQUESTS, requests
    for agent_id in agents:
        assert {joiner, guest, user_of(world, agent_id)} <= world.joined(room_of(world, agent_id))


async def agent_that_left_is_brought_back(world: World) -> None:
    agent_id = world.letta.add_agent("Leaver")
    first = await world.sync()
    room = room_of(world, agent_id)
    world.leave(user_of(world, agent_id), room)

    report = await world.sync()

    assert report.ok, report.failures
    assert agent_id in report.repaired and not report.rooms_created
    assert first.space_id is not None
    assert assert_agent_in_order(world, agent_id, "Leaver", first.space_id) == room


async def agent_that_left_a_crowded_room_is_noticed(world: World) -> None:
    """A colleague invited by hand keeps the member count up: only the membership tells."""
    colleague = world.new_person("colleague")
    agent_id = world.letta.add_agent("Crowded leaver")
    await world.sync()
    room = room_of(world, agent_id)
    world.act(world.admin_id, "POST", room_path(room, "invite"), {"user_id": colleague})
    world.act(colleague, "POST", room_path(room, "join"), {})
    await world.sync()
    world.leave(user_of(world, agent_id), room)

    report = await world.sync()

    assert report.ok, report.failures
    assert agent_id in report.repaired and not report.rooms_created
    assert room_of(world, agent_id) == room
    assert {user_of(world, agent_id), colleague} <= world.joined(room)


async def admin_and_bot_that_left_are_rejoined(world: World) -> None:
    agent_id = world.letta.add_agent("Deserted by staff")
    first = await world.sync()
    room = room_of(world, agent_id)
    world.leave(world.admin_id, room)
    world.leave(world.bot_id, room)

    report = await world.sync()
    again, requests = await counted(world)

    assert report.ok and again.ok, (report.failures, again.failures)
    assert not report.rooms_created
    assert first.space_id is not None
    assert assert_agent_in_order(world, agent_id, "Deserted by staff", first.space_id) == room
    assert not again.repaired and len(requests) <= STEADY_REQUESTS, requests


async def room_renamed_by_hand_gets_its_name_back(world: World) -> None:
    agent_id = world.letta.add_agent("Proper name")
    first = await world.sync()
    room = room_of(world, agent_id)
    world.act(world.admin_id, "PUT", room_path(room, "state", "m.room.name", ""), {"name": "Hi"})

    report = await world.sync()

    assert report.ok, report.failures
    assert agent_id in report.repaired
    assert first.space_id is not None
    assert_agent_in_order(world, agent_id, "Proper name", first.space_id)


async def a_change_after_a_quiet_sync_is_seen_by_the_next(world: World) -> None:
    """Between two syncs the server moved on with nothing this library watches (a topic), so
    the second sync's answer is empty; a rename after it must still reach the third, although
    Synapse answers a repeated /sync from its response cache for two minutes."""
    agent_id = world.letta.add_agent("Quietly renamed")
    first = await world.sync()
    await world.sync()
    room = room_of(world, agent_id)
    world.act(world.admin_id, "PUT", room_path(room, "state", "m.room.topic", ""), {"topic": "t"})
    quiet = await world.sync()
    world.act(world.admin_id, "PUT", room_path(room, "state", "m.room.name", ""), {"name": "Hi"})

    report = await world.sync()

    assert quiet.ok and not quiet.repaired, quiet.failures
    assert report.ok and agent_id in report.repaired, report.failures
    assert_agent_in_order(world, agent_id, "Quietly renamed", str(first.space_id))


async def removed_space_links_are_restored(world: World) -> None:
    unlisted, orphan = world.letta.add_agent("Unlisted"), world.letta.add_agent("Orphan")
    first = await world.sync()
    space_id = str(first.space_id)
    child = room_path(space_id, "state", "m.space.child", room_of(world, unlisted))
    world.act(world.admin_id, "PUT", child, {})
    parent = room_path(room_of(world, orphan), "state", "m.space.parent", space_id)
    world.act(world.admin_id, "PUT", parent, {})

    report = await world.sync()

    assert report.ok, report.failures
    assert {unlisted, orphan} <= set(report.repaired)
    for agent_id in (unlisted, orphan):
        assert space_links(world, space_id, room_of(world, agent_id)) == (True, True)


def map_agent_to(world: World, agent_id: str, room_id: str) -> None:
    """The data directory as the older service left it: the agent's room, nothing else."""
    path = world.data_dir / "agent_user_mappings.json"
    data = json.loads(path.read_text())
    data[agent_id]["room_id"] = room_id
    for name in ("history_import_pending", "history_import_done", "state_refused"):
        data[agent_id].pop(name, None)
    path.write_text(json.dumps(data))
    (world.data_dir / "agent_user_mappings.journal").unlink(missing_ok=True)


async def rooms_of_the_older_service_get_their_link_and_renames(world: World) -> None:
    """The older service made each room as the agent user with `private_chat` and invited the
    admin, who has power 0 there: the agent user, its creator, writes the space link, the tag
    and later names."""
    agent_id = world.letta.add_agent("Legacy")
    first = await world.sync()
    user, space_id = user_of(world, agent_id), str(first.space_id)
    body = {"name": "Legacy", "preset": "private_chat", "invite": [world.admin_id, world.bot_id]}
    old_room = str(world.act(user, "POST", f"{V3}/createRoom", body)["room_id"])
    for member in (world.admin_id, world.bot_id):
        world.act(member, "POST", room_path(old_room, "join"), {})
    map_agent_to(world, agent_id, old_room)

    migrated = await world.sync()
    world.letta.rename(agent_id, "Legacy renamed")
    renamed = await world.sync()

    assert migrated.ok and agent_id in migrated.repaired, migrated.failures
    assert space_links(world, space_id, old_room) == (True, True)
    assert world.state(old_room, AGENT_TAG) == {"agent_id": agent_id}
    assert renamed.ok and renamed.renamed == [agent_id], renamed.failures
    assert world.state(old_room, "m.room.name") == {"name": "Legacy renamed"}


async def a_demoted_admin_is_restored_and_the_room_renamed_back(world: World) -> None:
    """Room version 10 (power levels decide): the admin lowers its own level to 0 by mistake,
    and a person with power renames the room. The agent user, with power there, restores the
    admin's level and the name; the report says so. (Run on a version 10 homeserver: in 12
    the admin is a creator, whose power no level takes away.)"""
    moderator = world.new_person("moderator")
    agent_id = world.letta.add_agent("Steady name")
    await world.sync(invite_users=(moderator,))
    room = room_of(world, agent_id)
    world.act(moderator, "POST", room_path(room, "join"), {})
    levels_path = room_path(room, "state", "m.room.power_levels", "")
    levels = world.act(world.admin_id, "GET", levels_path)
    levels["users"] = {**levels["users"], world.admin_id: 0}
    world.act(world.admin_id, "PUT", levels_path, levels)
    world.act(moderator, "PUT", room_path(room, "state", "m.room.name", ""), {"name": "Hijacked"})

    report = await world.sync(invite_users=(moderator,))
    again = await world.sync(invite_users=(moderator,))

    assert report.ok and report.repaired == [agent_id], report
    user = user_of(world, agent_id)  # the room's creator: the one with power left
    assert report.actions[agent_id] == [
        f"power: m.room.power_levels as {user}",
        f"rename: m.room.name as {user}",
    ]
    assert world.state(room, "m.room.name") == {"name": "Steady name"}
    restored = world.state(room, "m.room.power_levels") or {}
    assert restored["users"][world.admin_id] == 100
    assert again.ok and not again.repaired


async def emptied_tags_are_restored(world: World) -> None:
    """The tags find the rooms again when a data directory is lost: an emptied one is put
    back (here by the admin, whose power lets it)."""
    agent_id = world.letta.add_agent("Tagged")
    first = await world.sync()
    room, space_id = room_of(world, agent_id), str(first.space_id)
    world.act(world.admin_id, "PUT", room_path(room, "state", AGENT_TAG, ""), {})
    world.act(world.admin_id, "PUT", room_path(space_id, "state", SPACE_TAG, ""), {})

    report = await world.sync()
    again = await world.sync()

    assert report.ok and report.repaired == [agent_id], report
    assert world.state(room, AGENT_TAG) == {"agent_id": agent_id}
    assert world.state(space_id, SPACE_TAG)
    assert again.ok and not again.repaired


async def space_the_admin_left_is_replaced_and_every_room_moved(world: World) -> None:
    agents = [world.letta.add_agent(f"Spaced {n}") for n in range(2)]
    first = await world.sync()
    old_space = str(first.space_id)
    world.leave(world.admin_id, old_space)

    report = await world.sync()
    again, requests = await counted(world)

    assert report.ok and report.space_created, report.failures
    new_space = str(report.space_id)
    assert new_space != old_space and set(report.migrated) == set(agents)
    for agent_id in agents:
        room = room_of(world, agent_id)
        assert space_links(world, new_space, room) == (True, True)
        assert not space_links(world, old_space, room)[1]  # the stale parent is gone
    assert again.ok and not again.migrated and len(requests) <= STEADY_REQUESTS, requests


async def deactivated_agent_keeps_its_room(world: World) -> None:
    gone, kept = world.letta.add_agent("Deactivated"), world.letta.add_agent("Active")
    first = await world.sync()
    world.make_server_admin(world.admin_id)
    room = room_of(world, gone)
    world.deactivate(user_of(world, gone))

    reports = [await world.sync(), await world.sync()]

    for report in reports:
        assert [failure.agent_id for failure in report.failures] == [gone]
        assert "deactivated" in report.failures[0].reason, report.failures[0].reason
        assert not report.rooms_created
    assert room_of(world, gone) == room
    assert space_links(world, str(first.space_id), room)[0]
    assert assert_agent_in_order(world, kept, "Active", str(first.space_id))


async def a_deactivated_agent_is_held_back_and_costs_no_requests(world: World) -> None:
    """The admin is no server admin, so the sync cannot ask whether the account is gone: its
    invite, join and refused login would repeat every sync. Tried on the next sync, then held
    back: listed failed with the next try, at no request, until Letta changes it or an
    operator asks. (Password mode only: Synapse lets an appservice act as a deactivated user
    of its namespace, so there the agent is joined back and reported repaired, which the
    homeserver then holds; checked on Synapse 1.x, and the fake does the same.)"""
    if world.appservice:
        return
    agent_id = world.letta.add_agent("Deactivated")
    await world.sync()
    world.deactivate(user_of(world, agent_id))

    tried = [await world.sync(), await world.sync()]
    steady, requests = await counted(world)
    retried, retried_requests = await counted(world, retry_failed=True)

    for report in [*tried, steady, retried]:
        assert [failure.agent_id for failure in report.failures] == [agent_id], report
    assert tried[0].failures[0].next_try is None  # the next sync tries again
    assert tried[1].failures[0].next_try and steady.failures[0].next_try
    assert tried[1].failures[0].reason == steady.failures[0].reason
    assert len(requests) <= STEADY_REQUESTS, requests
    assert len(retried_requests) > STEADY_REQUESTS, retried_requests
    world.letta.rename(agent_id, "Deactivated, renamed")
    changed, changed_requests = await counted(world)
    assert len(changed_requests) > STEADY_REQUESTS and changed.failures[0].agent_id == agent_id


async def an_agent_that_cannot_log_in_keeps_its_room_while_the_admin_is_out(world: World) -> None:
    """Only the agent can tell whether a room the admin left is alive; an agent whose saved
    password is refused cannot, and its room is kept, not replaced."""
    agent_id = world.letta.add_agent("Locked out")
    first = await world.sync()
    room, user = room_of(world, agent_id), user_of(world, agent_id)
    world.leave(world.admin_id, room)
    world.change_password(user, "changed-by-someone-else")  # logs it out everywhere

    report = await world.sync()

    if world.appservice:  # no password to refuse: the agent tells, and the admin is rejoined
        assert report.ok and world.admin_id in world.joined(room), report.failures
    else:
        assert [failure.agent_id for failure in report.failures] == [agent_id]
        assert "refused" in report.failures[0].reason
    assert not report.rooms_created and room_of(world, agent_id) == room
    assert space_links(world, str(first.space_id), room)[0]


async def upgraded_room(world: World, agent_id: str, moderator: str) -> tuple[str, str]:
    """A person upgrades the agent's room and invites the agent there, as clients offer."""
    old = room_of(world, agent_id)
    world.act(moderator, "POST", room_path(old, "join"), {})
    answer = world.act(moderator, "POST", room_path(old, "upgrade"), {"new_version": "12"})
    new = str(answer["replacement_room"])
    world.act(moderator, "POST", room_path(new, "invite"), {"user_id": user_of(world, agent_id)})
    return old, new


def blocked_on_the_parent_link(report: SyncReport, agent_id: str, room: str) -> None:
    """The one failure an upgraded room leaves: no account of ours may link it to the space."""
    assert [(f.agent_id, f.step) for f in report.failures] == [(agent_id, "space")], report
    reason = report.failures[0].reason
    assert f"m.space.parent in room {room}" in reason, reason
    # From the view's power levels, or (a room the view does not show yet) from the refusal.
    assert "needs power 50" in reason or "send_level (50)" in reason, reason


async def upgraded_room_is_followed(world: World) -> None:
    """Synapse copies no creator over: in the new room only the upgrader has power, so the
    new room cannot be tagged or linked from its side. The space's link and the mapping follow
    it; the agent fails, saying who lacks which power, at no cost in requests."""
    moderator = world.new_person("moderator")
    agent_id = world.letta.add_agent("Upgraded")
    first = await world.sync(invite_users=(moderator,))
    space_id = str(first.space_id)
    old, new = await upgraded_room(world, agent_id, moderator)

    report = await world.sync(invite_users=(moderator,))
    again, requests = await counted(world, invite_users=(moderator,))

    blocked_on_the_parent_link(report, agent_id, new)
    blocked_on_the_parent_link(again, agent_id, new)
    assert not report.rooms_created and not again.rooms_created and not again.repaired
    assert agent_id in report.repaired
    assert room_of(world, agent_id) == new
    assert {user_of(world, agent_id), world.admin_id, world.bot_id} <= world.joined(new)
    assert world.state(new, "m.room.name") == {"name": "Upgraded"}
    assert space_links(world, space_id, new)[0]
    assert not space_links(world, space_id, old)[0]
    assert not world.state(old, AGENT_TAG)  # never adopted again
    assert len(requests) <= STEADY_REQUESTS, requests


async def a_rename_no_account_may_write_is_a_failure_not_a_rename(world: World) -> None:
    """In an upgraded room only the upgrader has power: a rename in Letta reaches the user's
    display name, but not the room's name, and the report says that instead of `renamed`."""
    moderator = world.new_person("moderator")
    agent_id = world.letta.add_agent("Before the upgrade")
    await world.sync(invite_users=(moderator,))
    _, new = await upgraded_room(world, agent_id, moderator)
    await world.sync(invite_users=(moderator,))
    world.letta.rename(agent_id, "After the upgrade")

    report = await world.sync(invite_users=(moderator,))

    assert agent_id not in report.renamed and agent_id not in report.repaired
    assert [failure.step for failure in report.failures] == ["rename"], report.failures
    assert f"m.room.name in room {new}" in report.failures[0].reason
    assert "needs power 50" in report.failures[0].reason
    assert world.state(new, "m.room.name") == {"name": "Before the upgrade"}
    assert world.displayname(user_of(world, agent_id)) == "After the upgrade"


async def a_tombstone_naming_an_unrelated_room_is_not_followed(world: World) -> None:
    """Anyone with power can send a tombstone; only a room that continues this one (its
    creation names it as predecessor) is followed."""
    moderator = world.new_person("moderator")
    agent_id = world.letta.add_agent("Hijack target")
    people = {"invite_users": (moderator,)}
    first = await world.sync(**people)
    room = room_of(world, agent_id)
    world.act(moderator, "POST", room_path(room, "join"), {})
    body = {"preset": "private_chat", "invite": [world.admin_id, user_of(world, agent_id)]}
    elsewhere = world.act(moderator, "POST", f"{V3}/createRoom", body)["room_id"]
    tombstone = {"body": "moved", "replacement_room": elsewhere}
    world.act(moderator, "PUT", room_path(room, "state", "m.room.tombstone", ""), tombstone)

    refused = await world.sync(**people)
    again = await world.sync(**people)

    assert [failure.agent_id for failure in refused.failures] == [agent_id]
    assert "does not continue" in refused.failures[0].reason
    assert again.ok and not again.repaired, again.failures
    assert room_of(world, agent_id) == room
    assert space_links(world, str(first.space_id), room) == (True, True)
    assert world.admin_id not in world.joined(elsewhere)


async def followed_upgrade(world: World, name: str, moderator: str) -> tuple[str, str, str]:
    """(agent id, its room after an upgrade the sync followed, the space id)."""
    agent_id = world.letta.add_agent(name)
    first = await world.sync(invite_users=(moderator,))
    _, room = await upgraded_room(world, agent_id, moderator)
    await world.sync(invite_users=(moderator,))
    assert room_of(world, agent_id) == room
    return agent_id, room, str(first.space_id)


def remove(world: World, moderator: str, room: str, action: str, user: str) -> None:
    world.act(moderator, "POST", room_path(room, action), {"user_id": user})


async def agent_kicked_is_invited_back(world: World) -> None:
    """In an upgraded room its creator outranks everyone and may kick the agent; the
    admin's invite (level 0) brings it back."""
    moderator = world.new_person("moderator")
    agent_id, room, _ = await followed_upgrade(world, "Kicked", moderator)
    remove(world, moderator, room, "kick", user_of(world, agent_id))

    report = await world.sync(invite_users=(moderator,))

    blocked_on_the_parent_link(report, agent_id, room)
    assert not report.rooms_created and agent_id in report.repaired
    assert room_of(world, agent_id) == room and user_of(world, agent_id) in world.joined(room)


async def agent_banned_is_unbanned_where_the_admin_may(world: World) -> None:
    """The room's creator gave the admin power, then banned the agent: the admin lifts the
    ban and invites it back."""
    moderator = world.new_person("moderator")
    agent_id, room, _ = await followed_upgrade(world, "Pardoned", moderator)
    levels_path = room_path(room, "state", "m.room.power_levels", "")
    levels = world.act(moderator, "GET", levels_path)
    levels["users"] = {**levels.get("users", {}), world.admin_id: 100}
    world.act(moderator, "PUT", levels_path, levels)
    remove(world, moderator, room, "ban", user_of(world, agent_id))

    report = await world.sync(invite_users=(moderator,))

    assert report.ok, report.failures
    assert not report.rooms_created and agent_id in report.repaired
    assert room_of(world, agent_id) == room and user_of(world, agent_id) in world.joined(room)


async def agent_banned_where_the_admin_may_not_unban_gets_a_new_room(world: World) -> None:
    """A ban the admin has no power to lift: a new room, and the old one is unlinked."""
    moderator = world.new_person("moderator")
    agent_id, room, space_id = await followed_upgrade(world, "Exiled", moderator)
    remove(world, moderator, room, "ban", user_of(world, agent_id))

    report = await world.sync(invite_users=(moderator,))

    assert report.ok, report.failures
    assert report.rooms_created == [agent_id]
    new_room = room_of(world, agent_id)
    assert new_room != room and user_of(world, agent_id) in world.joined(new_room)
    assert space_links(world, space_id, new_room) == (True, True)
    assert not space_links(world, space_id, room)[0]
    assert not world.state(room, AGENT_TAG)


async def planned(world: World) -> dict[str, tuple[str, str]]:
    # The CLI runs its own event loop: in a thread of its own, as from a shell.
    code, out, err = await anyio.to_thread.run_sync(lambda: world.cli("plan", "--json"))
    assert code == 1, (err, out)  # an agent the sync cannot repair (`blocked`): exit 1
    return {a["agent_id"]: (a["action"], a["detail"]) for a in json.loads(out)["actions"]}


async def plan_shows_the_drift_a_sync_repairs(world: World) -> None:
    names = ("Left", "Renamed by hand", "Unlisted", "Deactivated", "Fine")
    left, renamed, unlisted, deactivated, fine = (world.letta.add_agent(n) for n in names)
    first = await world.sync()
    world.make_server_admin(world.admin_id)
    world.leave(user_of(world, left), room_of(world, left))
    name_path = room_path(room_of(world, renamed), "state", "m.room.name", "")
    world.act(world.admin_id, "PUT", name_path, {"name": "Hijacked"})
    child = room_path(str(first.space_id), "state", "m.space.child", room_of(world, unlisted))
    world.act(world.admin_id, "PUT", child, {})
    world.deactivate(user_of(world, deactivated))
    files = data_files(world)

    before = await planned(world)
    assert data_files(world) == files  # a plan writes nothing, not even the view
    report = await world.sync()
    after = await planned(world)

    expected = {  # each drift in the words an operator reads
        left: ("repair", "agent user not in the room (leave)"),
        renamed: ("repair", "room renamed by hand"),
        unlisted: ("repair", "room missing from the space"),
        deactivated: ("blocked", "agent user deactivated; room kept"),
        fine: ("ok", ""),
    }
    assert before == expected, before
    assert set(report.repaired) == {left, renamed, unlisted}
    assert [failure.agent_id for failure in report.failures] == [deactivated]
    assert {agent: action for agent, (action, _) in after.items()} == {
        left: "ok",
        renamed: "ok",
        unlisted: "ok",
        deactivated: "blocked",
        fine: "ok",
    }


def data_files(world: World) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in world.data_dir.iterdir() if p.is_file()}


DRIFT_SCENARIOS = [
    steady_sync_makes_at_most_three_requests,
    people_who_joined_or_never_answered_cost_nothing,
    agent_that_left_is_brought_back,
    agent_that_left_a_crowded_room_is_noticed,
    admin_and_bot_that_left_are_rejoined,
    room_renamed_by_hand_gets_its_name_back,
    a_change_after_a_quiet_sync_is_seen_by_the_next,
    removed_space_links_are_restored,
    emptied_tags_are_restored,
    rooms_of_the_older_service_get_their_link_and_renames,
    space_the_admin_left_is_replaced_and_every_room_moved,
    deactivated_agent_keeps_its_room,
    a_deactivated_agent_is_held_back_and_costs_no_requests,
    an_agent_that_cannot_log_in_keeps_its_room_while_the_admin_is_out,
    upgraded_room_is_followed,
    a_rename_no_account_may_write_is_a_failure_not_a_rename,
    a_tombstone_naming_an_unrelated_room_is_not_followed,
    agent_kicked_is_invited_back,
    agent_banned_is_unbanned_where_the_admin_may,
    agent_banned_where_the_admin_may_not_unban_gets_a_new_room,
    plan_shows_the_drift_a_sync_repairs,
]
