"""What an agent's room needs, and which account does it: one pure decision that `sync`
carries out and `plan` prints, so that the two cannot disagree.

It reads the admin's view of the room and what the library remembers about it (refusals,
an ignored tombstone), and makes no request. What only a request can tell (whether a room
the admin is not in still lives, whether an account was deactivated) stays with the callers,
which ask it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.matrix.view import MEMBER, RoomState
from app.state import AgentMapping
from app.sync import drift, power
from app.sync.rooms import AGENT_TAG
from app.sync.space import SPACE_CHILD, SPACE_PARENT
from app.sync.state_writes import WRITTEN, blocked_reason, refused_by, writers

DISPLAYNAME = "displayname"


@dataclass(frozen=True)
class Action:
    """One write the sync makes for an agent, and the account that makes it."""

    step: str  # the agent's step it belongs to: power, rename, space, tag
    what: str  # the state event type written, or `displayname`
    account: str  # "" when no account the library holds may: `blocked` says why
    room_id: str = ""
    state_key: str = ""
    blocked: str = ""
    # The report's list the agent goes to once the step is done ("" while creating its room).
    listed_as: str = ""

    def describe(self) -> str:
        return f"{self.step}: {self.what} as {self.account or 'nobody'}"


@dataclass(frozen=True)
class RoomFacts:
    mapping: AgentMapping
    agent_name: str
    # The room as the admin's view shows it; None when the admin is not in it (or not yet).
    room: RoomState | None
    expected_name: str
    admin: str
    bot: str
    space_id: str
    listed_in_space: bool
    # Made by this sync: its name, tag and link to the space were set as it was created.
    room_is_new: bool = False
    # The space was made or found again by this sync: linking a room to it is a migration.
    space_is_new: bool = False

    @property
    def writer_order(self) -> list[str]:
        return writer_order(self.admin, self.mapping.matrix_user_id, self.bot)


def writer_order(admin: str | None, agent_user: str | None, bot: str | None) -> list[str]:
    """Who writes a room's state: first the admin, then the agent user, then the bot."""
    return list(dict.fromkeys(user for user in (admin, agent_user, bot) if user))


def room_actions(facts: RoomFacts) -> list[Action]:
    """Every write the room needs, in the order the sync makes them."""
    return [*_power(facts), *_names(facts), *_space(facts), *_tag(facts)]


def room_fate(room: RoomState, mapping: AgentMapping, admin: str) -> str:
    """What becomes of a recorded room the admin sees: `keep` it; `follow` its upgrade;
    `rejoin` the agent that left or was banned; or `replace` it, when the admin may not let
    the agent back in."""
    replacement = drift.replacement_of(room)
    if replacement is not None and mapping.ignored_upgrade != replacement:
        return "follow"
    user = mapping.matrix_user_id
    membership = room.membership(user)
    if membership == "join":
        return "keep"
    if membership not in ("ban", "leave"):
        return "rejoin"  # invited, or never: the agent joins
    if membership == "ban" and not power.may_unban(room, admin, user):
        return "replace"
    return "rejoin" if power.may_invite(room, admin) else "replace"


def rejoined(room: RoomState, user_id: str) -> RoomState:
    """The room as it is once `user_id` is back in it."""
    return RoomState({**room.events, (MEMBER, user_id): {"membership": "join"}})


def members_back(room: RoomState, mapping: AgentMapping, members: list[str]) -> list[str]:
    """Members the library joined before that are out of the room now: joining them again
    is a repair (a first join is part of creating the room)."""
    status = mapping.invitation_status
    return [u for u in members if room.membership(u) != "join" and status.get(u) == "joined"]


def blocked(actions: list[Action]) -> Action | None:
    return next((action for action in actions if action.blocked), None)


def _state(facts: RoomFacts, step: str, what: str, listed_as: str, key: str = "") -> Action:
    """A write into the agent's room by the first account with the power; when none has it,
    the action is blocked with the reason."""
    room, room_id = facts.room, facts.mapping.room_id or ""
    if room is None:  # not in the admin's view: the agent user, the room's creator, writes
        return Action(step, what, facts.mapping.matrix_user_id, room_id, key, "", listed_as)
    lowered = lowered_core_users(facts) if what == power.POWER_LEVELS else []
    able = [u for u in writers(facts.mapping, room, facts.writer_order, what) if u not in lowered]
    if able:
        return Action(step, what, able[0], room_id, key, "", listed_as)
    refused = refused_by(facts.mapping, room, what)
    reason = blocked_reason(room_id, room, facts.writer_order, what, refused)
    return Action(step, what, "", room_id, key, reason, listed_as)


def lowered_core_users(facts: RoomFacts) -> list[str]:
    """The admin or bot demoted below what the library's writes need."""
    if facts.room is None:
        return []
    core = list(dict.fromkeys(u for u in (facts.admin, facts.bot) if u))
    return power.demoted(facts.room, core, WRITTEN)


def _power(facts: RoomFacts) -> list[Action]:
    """The admin or the bot demoted below what the library's writes need: put back."""
    if not lowered_core_users(facts):
        return []
    return [_state(facts, "power", power.POWER_LEVELS, "repaired")]


def _names(facts: RoomFacts) -> list[Action]:
    """A rename in Letta reaches the agent's display name and the room's name; a room name
    changed by hand is put back."""
    renamed = facts.mapping.agent_name != facts.agent_name
    room = facts.room
    stale = room is not None and drift.room_name(room) != facts.expected_name
    actions = []
    has_room = bool(facts.mapping.room_id and facts.mapping.room_created)
    if renamed:
        user = facts.mapping.matrix_user_id
        actions.append(Action("rename", DISPLAYNAME, user, listed_as="" if has_room else "renamed"))
    if (renamed or stale) and has_room:
        actions.append(
            _state(facts, "rename", drift.ROOM_NAME, "renamed" if renamed else "repaired")
        )
    return actions


def _space(facts: RoomFacts) -> list[Action]:
    """The space lists the room (`m.space.child`, the admin's write in the space) and the
    room names the space (`m.space.parent`, in the room)."""
    room_id, room = facts.mapping.room_id or "", facts.room
    unlisted = not facts.listed_in_space
    parent_lost = room is not None and not drift.has_parent(room, facts.space_id)
    # A room the admin cannot see may have lost its link as well: written again to be sure.
    unseen = room is None and unlisted
    link_parent = not facts.room_is_new and (parent_lost or unseen)
    listed_as = "" if facts.room_is_new else ("migrated" if facts.space_is_new else "repaired")
    actions = []
    if unlisted:
        actions.append(Action("space", SPACE_CHILD, facts.admin, facts.space_id, room_id))
    if link_parent:
        actions.append(_state(facts, "space", SPACE_PARENT, "", facts.space_id))
    return [replace(action, listed_as=listed_as) for action in actions]


def _tag(facts: RoomFacts) -> list[Action]:
    """The room's tag names its agent, so that a lost data directory finds the room again."""
    room = facts.room
    if room is None or room.content(AGENT_TAG) == {"agent_id": facts.mapping.agent_id}:
        return []  # a room the view does not show yet was tagged as it was made
    return [_state(facts, "tag", AGENT_TAG, "repaired")]
