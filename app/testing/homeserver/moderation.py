"""Kick, ban, unban and room upgrades in the fake homeserver, with Synapse's permission rules.

A kick, ban or unban needs the sender joined, at the ``kick``/``ban`` level, and above the
target's power level; in room version 12 a creator outranks everyone, so nobody can remove
one. An upgrade (``POST /rooms/{id}/upgrade``) needs the tombstone level. It makes a room whose
creator is the upgrading user, copies the state Synapse copies (join rules, name, topic,
visibility, guest access, avatar, encryption, ACL, power levels) and the bans, joins only
that user (others need an invite, as the client API's upgrade does), sends
``m.room.tombstone`` into the old room and restricts it.
"""

from __future__ import annotations

from app.testing.fake_http import FakeResponse
from app.testing.homeserver.model import Call, HomeserverState, Room, matrix_error, ok

_COPIED = (
    "m.room.join_rules",
    "m.room.name",
    "m.room.topic",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
)


def _target(call: Call) -> str | FakeResponse:
    target = call.body().get("user_id")
    if not isinstance(target, str) or not target.startswith("@"):
        return matrix_error(400, "M_MISSING_PARAM", "Missing parameter: user_id")
    return target


def _may_act_on(room: Room, sender: str, target: str, action: str) -> FakeResponse | None:
    sender_level = room.power_level(sender)
    if sender_level < room.action_level(action) or room.power_level(target) >= sender_level:
        return matrix_error(403, "M_FORBIDDEN", f"You cannot {action} user {target}.")
    return None


def _moderate(hs: HomeserverState, call: Call, action: str, membership: str) -> FakeResponse:
    target = _target(call)
    if isinstance(target, FakeResponse):
        return target
    room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    current = room.members.get(target)
    if action == "kick" and current not in ("join", "invite"):
        return matrix_error(403, "M_FORBIDDEN", f"{target} is not in the room.")
    if action == "unban" and current != "ban":
        return matrix_error(
            403, "M_BAD_STATE", f"Cannot unban user who was not banned (membership={current})"
        )
    refused = _may_act_on(room, call.user_id, target, "ban" if action == "unban" else action)
    if refused is not None:
        return refused
    hs.set_state(room, "m.room.member", target, {"membership": membership}, call.user_id)
    return ok()


def kick(hs: HomeserverState, call: Call) -> FakeResponse:
    return _moderate(hs, call, "kick", "leave")


def ban(hs: HomeserverState, call: Call) -> FakeResponse:
    return _moderate(hs, call, "ban", "ban")


def unban(hs: HomeserverState, call: Call) -> FakeResponse:
    return _moderate(hs, call, "unban", "leave")


def upgrade(hs: HomeserverState, call: Call) -> FakeResponse:
    old = hs.joined_room(call)
    if isinstance(old, FakeResponse):
        return old
    version = call.body().get("new_version")
    if not isinstance(version, str):
        return matrix_error(400, "M_MISSING_PARAM", "Missing parameter: new_version")
    if old.power_level(call.user_id) < old.required_level("m.room.tombstone", is_state=True):
        return matrix_error(403, "M_FORBIDDEN", "You don't have permission to upgrade the room")
    new = upgraded_room(hs, old, call.user_id, version)
    content = {"body": "This room has been replaced", "replacement_room": new.room_id}
    hs.set_state(old, "m.room.tombstone", "", content, call.user_id)
    levels = dict(old.content("m.room.power_levels") or {})
    levels.update(events_default=50, invite=50)
    hs.set_state(old, "m.room.power_levels", "", levels, call.user_id)
    return ok({"replacement_room": new.room_id})


def upgraded_room(hs: HomeserverState, old: Room, creator: str, version: str) -> Room:
    room = Room(hs.new_room_id(), creator)
    hs.rooms[room.room_id] = room
    create = {"room_version": version, "predecessor": {"room_id": old.room_id}}
    hs.set_state(room, "m.room.create", "", create, creator)
    hs.set_membership(room, creator, "join", creator)
    levels = dict(old.content("m.room.power_levels") or {})
    users = dict(levels.get("users") or {})
    if version == "12":
        users.pop(creator, None)  # a creator is never listed in version 12
    hs.set_state(room, "m.room.power_levels", "", {**levels, "users": users}, creator)
    for event_type in _COPIED:
        content = old.content(event_type)
        if content is not None:
            hs.set_state(room, event_type, "", dict(content), creator)
    for user_id, membership in old.members.items():
        if membership == "ban":
            hs.set_state(room, "m.room.member", user_id, {"membership": "ban"}, creator)
    return room
