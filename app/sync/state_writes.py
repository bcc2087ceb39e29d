"""Writing an agent room's state with the account that has the power to.

The order is the admin, the agent's own user, then the bot; the first whose level suffices
(as the admin's view shows the room) writes. A write the homeserver refuses anyway is
remembered for that room, event type and account, and forgotten when the room's power levels
change. When no account may write, the agent fails with the reason: reporting it in order
would be untrue, and retrying blindly would never help.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.errors import MatrixForbidden, SyncError
from app.matrix import MatrixClient
from app.matrix.view import RoomState
from app.state import AgentMapping
from app.sync import power
from app.sync.drift import ROOM_NAME
from app.sync.rooms import AGENT_TAG
from app.sync.space import SPACE_PARENT

log = logging.getLogger(__name__)

# The state types the library writes into agent rooms: the admin needs the level for all.
WRITTEN = (ROOM_NAME, SPACE_PARENT, AGENT_TAG)


class StatePowerMissing(SyncError):
    """No account the library holds may write a state event the agent's room needs."""


def _refusals(mapping: AgentMapping, room: RoomState) -> dict[str, list[str]]:
    """event type -> accounts refused, when recorded for this room at its current levels."""
    saved = mapping.refused_state
    if not isinstance(saved, dict) or saved.get("room_id") != mapping.room_id:
        return {}
    if saved.get("levels") != power.levels_fingerprint(room):
        return {}  # the levels changed (or an older record): every account may try again
    by_type = saved.get("refused")
    return by_type if isinstance(by_type, dict) else {}


def refused_by(mapping: AgentMapping, room: RoomState, event_type: str) -> set[str]:
    users = _refusals(mapping, room).get(event_type, [])
    return {user for user in users if isinstance(user, str)}


def remember_refusal(mapping: AgentMapping, room: RoomState, event_type: str, user_id: str) -> None:
    by_type = dict(_refusals(mapping, room))
    by_type[event_type] = sorted({*by_type.get(event_type, []), user_id})
    mapping.refused_state = {
        "room_id": mapping.room_id,
        "levels": power.levels_fingerprint(room),
        "refused": by_type,
    }


def writers(mapping: AgentMapping, room: RoomState, order: list[str], event_type: str) -> list[str]:
    """The accounts that may write `event_type` in the room, in order, less known refusals."""
    refused = refused_by(mapping, room, event_type)
    return [
        user for user in order if user not in refused and power.may_write(room, user, event_type)
    ]


def blocked_reason(
    room_id: str, room: RoomState, order: list[str], event_type: str, refused: set[str]
) -> str:
    """Why no account may write, with everyone's level and whom the homeserver refused."""
    levels = power.describe_levels(room, order, event_type)
    also = f"; the homeserver refused {', '.join(sorted(refused))} all the same" if refused else ""
    return (
        f"no account may write {event_type} in room {room_id} ({levels}{also}): give the "
        "admin that power there, then `sync --retry-failed`"
    )


def is_power_refusal(error: MatrixForbidden) -> bool:
    """Synapse's auth rules name the levels; any other 403 (a spam checker, a proxy, a room
    left meanwhile) says nothing lasting about who may write."""
    return "user_level" in (error.error or "") or "power" in (error.error or "").lower()


async def write_with_power(
    mapping: AgentMapping,
    room: RoomState,
    order: list[str],
    client_of: Callable[[str], Awaitable[MatrixClient]],
    write: Callable[[MatrixClient], Awaitable[Any]],
    event_type: str,
) -> str:
    """Write with the first able account, and return it; one the homeserver refuses is
    remembered and the next one tries. Raises `StatePowerMissing` when none is left."""
    room_id = mapping.room_id or ""
    for user in writers(mapping, room, order, event_type):
        try:
            await write(await client_of(user))
            return user
        except MatrixForbidden as exc:
            if not is_power_refusal(exc):
                raise  # the agent fails this sync, and the next one tries again
            log.warning("%s may not write %s in %s: %s", user, event_type, room_id, exc)
            remember_refusal(mapping, room, event_type, user)
    refused = refused_by(mapping, room, event_type)
    raise StatePowerMissing(blocked_reason(room_id, room, order, event_type, refused))
