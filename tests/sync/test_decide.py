"""The one decision `sync` carries out and `plan` prints: which writes an agent's room needs,
and which account makes each (pure functions, no homeserver)."""

from __future__ import annotations

from app.matrix.view import CREATE, MEMBER, RoomState
from app.state import AgentMapping
from app.state.models import IGNORED_UPGRADE
from app.sync import decide, power
from app.sync.decide import RoomFacts, room_actions, room_fate
from app.sync.drift import ROOM_NAME
from app.sync.rooms import AGENT_TAG
from app.sync.space import SPACE_PARENT
from app.sync.state_writes import remember_refusal

ADMIN, AGENT, BOT = "@admin:hs", "@agent:hs", "@bot:hs"
SPACE, ROOM = "!space:hs", "!room:hs"


def mapping(name: str = "Agent", **extra: object) -> AgentMapping:
    return AgentMapping("agent-1", name, AGENT, "pw", True, ROOM, True, {}, dict(extra))


def room(levels: dict[str, object], *, agent: str = "join", **state: object) -> RoomState:
    """A room of version 10 made by the agent user, everyone else joined, in order."""
    events: dict[tuple[str, str], dict[str, object]] = {
        (CREATE, ""): {"room_version": "10", "sender": AGENT},
        (MEMBER, ADMIN): {"membership": "join"},
        (MEMBER, BOT): {"membership": "join"},
        (MEMBER, AGENT): {"membership": agent},
        (power.POWER_LEVELS, ""): levels,
        (ROOM_NAME, ""): {"name": "Agent"},
        (SPACE_PARENT, SPACE): {"via": ["hs"]},
        (AGENT_TAG, ""): {"agent_id": "agent-1"},
    }
    events.update({(kind, ""): content for kind, content in state.items()})  # type: ignore[misc]
    return RoomState(events)


def facts(the_room: RoomState | None, the_mapping: AgentMapping, **more: object) -> RoomFacts:
    given: dict[str, object] = {
        "mapping": the_mapping,
        "agent_name": "Agent",
        "room": the_room,
        "expected_name": "Agent",
        "admin": ADMIN,
        "bot": BOT,
        "space_id": SPACE,
        "listed_in_space": True,
        **more,
    }
    return RoomFacts(**given)  # type: ignore[arg-type]


def lines(found: list[decide.Action]) -> list[str]:
    return [action.describe() for action in found]


def test_a_room_in_order_needs_no_write() -> None:
    in_order = room({"users": {AGENT: 100, ADMIN: 100, BOT: 100}})
    assert room_actions(facts(in_order, mapping())) == []


def test_an_older_service_room_is_written_by_its_creator_the_agent_user() -> None:
    """Made with `private_chat` by the agent user: the admin sits at the default 0."""
    older = room({"users": {AGENT: 100}}, **{SPACE_PARENT: {}})
    found = room_actions(facts(older, mapping("Old name"), agent_name="Agent"))
    assert lines(found) == [
        f"rename: displayname as {AGENT}",
        f"rename: m.room.name as {AGENT}",
    ]
    unlinked = RoomState({**older.events, (SPACE_PARENT, SPACE): {}})
    found = room_actions(facts(unlinked, mapping()))
    assert lines(found) == [f"space: m.space.parent as {AGENT}"]
    assert [action.listed_as for action in found] == ["repaired"]


def test_a_demoted_admin_is_restored_by_the_agent_and_then_the_agent_writes() -> None:
    demoted = room({"users": {AGENT: 100, ADMIN: 0, BOT: 100}}, **{ROOM_NAME: {"name": "X"}})
    found = room_actions(facts(demoted, mapping()))
    assert lines(found) == [
        f"power: m.room.power_levels as {AGENT}",
        f"rename: m.room.name as {AGENT}",
    ]


def test_a_write_no_account_may_make_is_blocked_with_the_levels_and_the_fix() -> None:
    # Nobody named in the levels, so nobody demoted: the room was made this way.
    nobody = room({"users": {AGENT: 0}}, **{AGENT_TAG: {}})
    found = room_actions(facts(nobody, mapping()))
    assert lines(found) == ["tag: ai.letta.agent as nobody"]
    reason = found[0].blocked
    assert ROOM in reason and "ai.letta.agent needs power 50" in reason
    assert f"{ADMIN} has 0" in reason and "sync --retry-failed" in reason
    assert decide.blocked(found) == found[0]


def test_a_refused_account_is_passed_over_until_the_levels_change() -> None:
    levels = {"users": {AGENT: 100, ADMIN: 100, BOT: 100}}
    the_room = room(levels, **{AGENT_TAG: {}})
    remembered = mapping()
    remember_refusal(remembered, the_room, AGENT_TAG, ADMIN)
    assert lines(room_actions(facts(the_room, remembered))) == [f"tag: ai.letta.agent as {AGENT}"]
    changed = RoomState({**the_room.events, (power.POWER_LEVELS, ""): {**levels, "ban": 60}})
    assert lines(room_actions(facts(changed, remembered))) == [f"tag: ai.letta.agent as {ADMIN}"]


def test_a_new_space_migrates_the_room_and_a_new_room_needs_only_its_listing() -> None:
    in_order = room({"users": {AGENT: 100, ADMIN: 100, BOT: 100}})
    moved = room_actions(
        facts(in_order, mapping(), space_id="!new:hs", listed_in_space=False, space_is_new=True)
    )
    assert lines(moved) == [
        f"space: m.space.child as {ADMIN}",
        f"space: m.space.parent as {ADMIN}",
    ]
    assert {action.listed_as for action in moved} == {"migrated"}
    made_now = room_actions(facts(None, mapping(), listed_in_space=False, room_is_new=True))
    assert [(a.what, a.listed_as) for a in made_now] == [("m.space.child", "")]


def test_a_room_the_admin_cannot_see_is_written_by_the_agent_user() -> None:
    found = room_actions(facts(None, mapping("Old"), listed_in_space=False))
    assert lines(found) == [
        f"rename: displayname as {AGENT}",
        f"rename: m.room.name as {AGENT}",
        f"space: m.space.child as {ADMIN}",
        f"space: m.space.parent as {AGENT}",
    ]


def test_the_fate_of_a_room_follows_who_may_let_the_agent_back_in() -> None:
    """The spec's rules: an unban needs the ban and kick levels and more power than the
    banned user's; an invite needs the invite level."""
    levels = {"users": {AGENT: 50, ADMIN: 100}, "ban": 50, "kick": 50, "invite": 0}
    assert room_fate(room(levels), mapping(), ADMIN) == "keep"
    assert room_fate(room(levels, agent="leave"), mapping(), ADMIN) == "rejoin"
    assert room_fate(room(levels, agent="ban"), mapping(), ADMIN) == "rejoin"
    assert room_fate(room(levels, agent="invite"), mapping(), ADMIN) == "rejoin"
    peers = {**levels, "users": {AGENT: 100, ADMIN: 100}}  # the agent made the room
    assert room_fate(room(peers, agent="ban"), mapping(), ADMIN) == "replace"
    assert room_fate(room(peers, agent="leave"), mapping(), ADMIN) == "rejoin"
    no_kick = {**levels, "kick": 101}
    assert room_fate(room(no_kick, agent="ban"), mapping(), ADMIN) == "replace"
    weak = {**levels, "users": {AGENT: 0, ADMIN: 10}, "invite": 20}
    assert room_fate(room(weak, agent="leave"), mapping(), ADMIN) == "replace"
    # Rooms before version 10 may hold levels as strings.
    strings = {"users": {AGENT: "0", ADMIN: "100"}, "ban": "50", "kick": "50", "invite": "0"}
    assert room_fate(room(strings, agent="ban"), mapping(), ADMIN) == "rejoin"


def test_an_upgrade_is_followed_unless_the_tombstone_was_found_not_to_continue_it() -> None:
    tomb = {"m.room.tombstone": {"replacement_room": "!next:hs"}}
    upgraded = room({"users": {AGENT: 100, ADMIN: 100}}, **tomb)
    assert room_fate(upgraded, mapping(), ADMIN) == "follow"
    ignored = mapping(**{IGNORED_UPGRADE: "!next:hs"})
    assert room_fate(upgraded, ignored, ADMIN) == "keep"


def test_the_parent_link_is_written_in_the_room_naming_the_space() -> None:
    older = room({"users": {AGENT: 100}}, **{SPACE_PARENT: {}})
    unlinked = RoomState({**older.events, (SPACE_PARENT, SPACE): {}})
    (parent,) = room_actions(facts(unlinked, mapping()))
    assert (parent.what, parent.room_id, parent.state_key) == (SPACE_PARENT, ROOM, SPACE)
