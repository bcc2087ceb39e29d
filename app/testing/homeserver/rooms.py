"""Room endpoints of the fake homeserver: createRoom, join, leave, invite, membership lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.testing.fake_http import FakeResponse
from app.testing.homeserver.model import (
    Call,
    HomeserverState,
    JsonDict,
    Room,
    matrix_error,
    ok,
)

PRESETS = ("private_chat", "trusted_private_chat", "public_chat")

_DEFAULT_EVENT_LEVELS = {
    "m.room.name": 50,
    "m.room.power_levels": 100,
    "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50,
    "m.room.avatar": 50,
    "m.room.tombstone": 100,
    "m.room.server_acl": 100,
    "m.room.encryption": 100,
}


def _is_user_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("@") and ":" in value


def _check_initial_state(events: Any) -> FakeResponse | None:
    if not isinstance(events, list):
        return matrix_error(400, "M_BAD_JSON", "initial_state must be a list")
    for event in events:
        if not (
            isinstance(event, dict)
            and isinstance(event.get("type"), str)
            and isinstance(event.get("state_key", ""), str)
            and isinstance(event.get("content"), dict)
        ):
            return matrix_error(400, "M_BAD_JSON", "Invalid initial_state event")
    return None


def check_create_body(hs: HomeserverState, body: Mapping[str, Any]) -> FakeResponse | None:
    """The 400 Synapse would give for this ``createRoom`` body, or ``None``."""
    if body.get("preset") is not None and body.get("preset") not in PRESETS:
        return matrix_error(400, "M_INVALID_PARAM", "Invalid preset")
    invite = body.get("invite", [])
    if not isinstance(invite, list) or not all(_is_user_id(u) for u in invite):
        return matrix_error(400, "M_INVALID_PARAM", "Invalid user_id in invite list")
    for key in ("creation_content", "power_level_content_override"):
        if not isinstance(body.get(key, {}), dict):
            return matrix_error(400, "M_BAD_JSON", f"{key} must be an object")
    problem = _check_initial_state(body.get("initial_state", []))
    if problem is not None:
        return problem
    alias_name = body.get("room_alias_name")
    if alias_name is not None and f"#{alias_name}:{hs.server_name}" in hs.aliases:
        return matrix_error(400, "M_ROOM_IN_USE", "Room alias already taken")
    return None


def _preset(body: Mapping[str, Any]) -> str:
    preset = body.get("preset")
    if isinstance(preset, str):
        return preset
    return "public_chat" if body.get("visibility") == "public" else "private_chat"


def _power_levels(creator: str, preset: str, body: Mapping[str, Any], version: str) -> JsonDict:
    # Room version 12 never lists a creator (creators outrank every level), and makes the
    # invitees of a trusted private chat creators too; older versions give them all 100.
    users: dict[str, int] = {} if version == "12" else {creator: 100}
    if preset == "trusted_private_chat" and version != "12":
        users.update({invitee: 100 for invitee in body.get("invite", [])})
    levels: JsonDict = {
        "users": users,
        "users_default": 0,
        "events": dict(_DEFAULT_EVENT_LEVELS),
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50 if preset == "public_chat" else 0,
        "historical": 100,
    }
    for key, value in dict(body.get("power_level_content_override") or {}).items():
        if key in ("users", "events") and isinstance(value, dict):
            levels[key] = {**levels[key], **value}
        else:
            levels[key] = value
    return levels


def _preset_state(preset: str) -> list[tuple[str, JsonDict]]:
    public = preset == "public_chat"
    state: list[tuple[str, JsonDict]] = [
        ("m.room.join_rules", {"join_rule": "public" if public else "invite"}),
        ("m.room.history_visibility", {"history_visibility": "shared"}),
    ]
    if not public:
        state.append(("m.room.guest_access", {"guest_access": "can_join"}))
    return state


def build_room(hs: HomeserverState, creator: str, body: Mapping[str, Any]) -> Room:
    """Create a room the way Synapse orders the initial events (body already checked)."""
    room = Room(hs.new_room_id(), creator)
    hs.rooms[room.room_id] = room
    version = str(body.get("room_version") or hs.default_room_version)
    create = {**dict(body.get("creation_content") or {}), "room_version": version}
    invitees = [user for user in body.get("invite", []) if user != creator]
    if version == "12" and _preset(body) == "trusted_private_chat" and invitees:
        create["additional_creators"] = sorted({*create.get("additional_creators", []), *invitees})
    hs.set_state(room, "m.room.create", "", create, creator)
    hs.set_membership(room, creator, "join", creator)
    preset = _preset(body)
    hs.set_state(
        room, "m.room.power_levels", "", _power_levels(creator, preset, body, version), creator
    )
    alias_name = body.get("room_alias_name")
    if alias_name is not None:
        alias = f"#{alias_name}:{hs.server_name}"
        hs.aliases[alias] = room.room_id
        hs.set_state(room, "m.room.canonical_alias", "", {"alias": alias}, creator)
    for event_type, content in _preset_state(preset):
        hs.set_state(room, event_type, "", content, creator)
    for event in body.get("initial_state", []):
        hs.set_state(room, event["type"], event.get("state_key", ""), event["content"], creator)
    if isinstance(body.get("name"), str):
        hs.set_state(room, "m.room.name", "", {"name": body["name"]}, creator)
    if isinstance(body.get("topic"), str):
        hs.set_state(room, "m.room.topic", "", {"topic": body["topic"]}, creator)
    for invitee in body.get("invite", []):
        if invitee != creator:
            hs.set_membership(room, invitee, "invite", creator)
    return room


def create_room(hs: HomeserverState, call: Call) -> FakeResponse:
    body = call.body()
    problem = check_create_body(hs, body)
    if problem is not None:
        return problem
    return ok({"room_id": build_room(hs, call.user_id, body).room_id})


def join(hs: HomeserverState, call: Call) -> FakeResponse:
    """``POST /join/{roomIdOrAlias}`` and ``POST /rooms/{roomId}/join``; idempotent."""
    target = call.params.get("target") or call.params["room_id"]
    room_id = hs.aliases.get(target) if target.startswith("#") else target
    room = hs.rooms.get(room_id or "")
    if room is None:
        return matrix_error(404, "M_NOT_FOUND", f"Unknown room {target}")
    membership = room.members.get(call.user_id)
    if membership != "join":
        if membership != "invite" and room.join_rule != "public":
            return matrix_error(403, "M_FORBIDDEN", "You are not invited to this room.")
        hs.set_membership(room, call.user_id, "join", call.user_id)
    return ok({"room_id": room.room_id})


def leave(hs: HomeserverState, call: Call) -> FakeResponse:
    room = hs.rooms.get(call.params["room_id"])
    membership = None if room is None else room.members.get(call.user_id)
    if room is None or membership is None:
        return matrix_error(403, "M_FORBIDDEN", f"User {call.user_id} not in room")
    if membership != "leave":
        hs.set_membership(room, call.user_id, "leave", call.user_id)
    return ok()


def invite(hs: HomeserverState, call: Call) -> FakeResponse:
    target = call.body().get("user_id")
    if not isinstance(target, str):
        return matrix_error(400, "M_MISSING_PARAM", "Missing parameter: user_id")
    if not _is_user_id(target):
        return matrix_error(400, "M_INVALID_PARAM", f"Invalid user_id {target!r}")
    room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    if room.power_level(call.user_id) < room.action_level("invite"):
        return matrix_error(403, "M_FORBIDDEN", "You don't have permission to invite users")
    membership = room.members.get(target)
    if membership == "join":
        return matrix_error(403, "M_FORBIDDEN", f"{target} is already in the room.")
    if membership == "ban":
        return matrix_error(403, "M_FORBIDDEN", f"{target} is banned from the room")
    if membership != "invite":
        hs.set_membership(room, target, "invite", call.user_id)
    return ok()


def joined_rooms(hs: HomeserverState, call: Call) -> FakeResponse:
    return ok({"joined_rooms": hs.joined_rooms_of(call.user_id)})


def joined_members(hs: HomeserverState, call: Call) -> FakeResponse:
    room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    joined: JsonDict = {}
    for user_id in room.joined():
        user = hs.users.get(user_id)
        name = None if user is None else user.displayname
        joined[user_id] = {"display_name": name, "avatar_url": None}
    return ok({"joined": joined})
