"""Kept importable for bridges (migration_notes.md named it): an agent's names now live in
`app.identity.naming`, Matrix ids in `app.matrix.ids`, the room name in `app.sync.rooms`."""

from app.identity.naming import MAX_LOCALPART, agent_localpart, agent_user_id, new_password
from app.matrix.ids import localpart_of, server_name_of, user_id_from
from app.sync.rooms import room_name

__all__ = [
    "MAX_LOCALPART",
    "agent_localpart",
    "agent_user_id",
    "localpart_of",
    "new_password",
    "room_name",
    "server_name_of",
    "user_id_from",
]
