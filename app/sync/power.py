"""Who may write a room's state: the room's power levels, as the admin's view holds them.

Rooms differ in who holds power: the library's own rooms make the admin and the bot
creators alongside the agent, while rooms of the older service were made by the agent user
alone (`private_chat`), the admin invited at power 0, and people may change levels by hand.
So each write goes to the first account, in a fixed order, whose level suffices.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

from app.matrix.view import CREATE, RoomState

POWER_LEVELS = "m.room.power_levels"
# Room versions from which creators outrank every level (MSC4289); versions are strings.
_CREATOR_POWER_FROM = 12


def creators(room: RoomState) -> set[str]:
    """The users with a creator's unlimited power: none before room version 12."""
    create = room.content(CREATE) or {}
    version = str(create.get("room_version", "1"))
    if not version.isdigit() or int(version) < _CREATOR_POWER_FROM:
        return set()
    extra = create.get("additional_creators")
    found = {create.get("sender"), *(extra if isinstance(extra, list) else [])}
    return {user for user in found if isinstance(user, str)}


def level_of(room: RoomState, user_id: str) -> float:
    if user_id in creators(room):
        return math.inf
    levels = room.content(POWER_LEVELS)
    if levels is None:
        # Without a levels event the creator has 100 and everyone else 0 (the spec's default).
        return 100 if (room.content(CREATE) or {}).get("sender") == user_id else 0
    users = levels.get("users")
    value = users.get(user_id) if isinstance(users, dict) else None
    return _number(value, _number(levels.get("users_default"), 0))


def needed_for(room: RoomState, event_type: str) -> float:
    levels = room.content(POWER_LEVELS)
    if levels is None:
        return 0
    events = levels.get("events")
    value = events.get(event_type) if isinstance(events, dict) else None
    return _number(value, _number(levels.get("state_default"), 50))


def _threshold(room: RoomState, action: str, default: float) -> float:
    return _number((room.content(POWER_LEVELS) or {}).get(action), default)


def may_unban(room: RoomState, sender: str, target: str) -> bool:
    """The spec's rule for lifting a ban: the ban and kick levels, and more power than the
    banned user's."""
    level = level_of(room, sender)
    return (
        level >= _threshold(room, "ban", 50)
        and level >= _threshold(room, "kick", 50)
        and level_of(room, target) < level
    )


def may_invite(room: RoomState, sender: str) -> bool:
    joined = room.membership(sender) == "join"
    return joined and level_of(room, sender) >= _threshold(room, "invite", 0)


def may_write(room: RoomState, user_id: str, event_type: str) -> bool:
    joined = room.membership(user_id) == "join"
    return joined and level_of(room, user_id) >= needed_for(room, event_type)


def levels_fingerprint(room: RoomState) -> str:
    """Changes whenever the room's levels (or creators) change: refusals are forgotten then."""
    both = [room.content(POWER_LEVELS), sorted(creators(room))]
    text = json.dumps(both, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_levels(room: RoomState, users: Sequence[str], event_type: str) -> str:
    """`m.room.name needs power 50; @a has 0, @b is not in the room`."""
    parts = []
    for user in users:
        if room.membership(user) != "join":
            parts.append(f"{user} is not in the room")
        else:
            level = level_of(room, user)
            parts.append(f"{user} has {'creator power' if math.isinf(level) else int(level)}")
    needed = needed_for(room, event_type)
    return f"{event_type} needs power {int(needed)}; " + ", ".join(parts)


def _number(value: object, default: float) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return float(value)  # older rooms may hold levels as strings
    return default


def demoted(room: RoomState, users: Sequence[str], event_types: Sequence[str]) -> list[str]:
    """Of `users`, those joined whose level someone set below what `event_types` need.

    A level set explicitly lower is drift, to restore; a user the levels never name (the admin
    in a room of the older service, invited at the default 0) is the room's design, left be.
    """
    levels = room.content(POWER_LEVELS) or {}
    listed = levels.get("users")
    named = listed if isinstance(listed, dict) else {}
    needed = max((needed_for(room, event_type) for event_type in event_types), default=0)
    return [
        user
        for user in users
        if user in named and room.membership(user) == "join" and level_of(room, user) < needed
    ]


def restored_levels(room: RoomState, users: Sequence[str], writer: str) -> dict[str, object]:
    """The room's levels with `users` raised to the writer's level, at most 100 (a user may
    grant no more than its own level)."""
    levels = dict(room.content(POWER_LEVELS) or {})
    named = dict(levels.get("users") or {})
    grant = int(min(level_of(room, writer), 100))
    named.update({user: grant for user in users})
    return {**levels, "users": named}
