"""``GET /_matrix/client/v1/rooms/{roomId}/hierarchy`` of the fake homeserver."""

from __future__ import annotations

from app.testing.fake_http import FakeResponse
from app.testing.homeserver.model import (
    Call,
    HomeserverState,
    JsonDict,
    Room,
    StateEvent,
    matrix_error,
    ok,
)

_DEFAULT_LIMIT = 50
_MAX_LIMIT = 50  # Synapse caps the page size at 50 whatever the client asks for


def child_links(room: Room) -> list[StateEvent]:
    """The room's ``m.space.child`` events with a non-empty ``via``, in Synapse's order."""
    if room.room_type != "m.space":
        return []
    links = [
        event
        for (event_type, _), event in room.state.items()
        if event_type == "m.space.child"
        and isinstance(event.content.get("via"), list)
        and event.content["via"]
    ]

    def sort_key(event: StateEvent) -> tuple[bool, str, int, str]:
        order = event.content.get("order")
        valid = isinstance(order, str)
        text = order if isinstance(order, str) else ""
        return (not valid, text, event.origin_server_ts, event.state_key)

    return sorted(links, key=sort_key)


def _accessible(room: Room, user_id: str) -> bool:
    if room.members.get(user_id) in ("join", "invite"):
        return True
    visibility = (room.content("m.room.history_visibility") or {}).get("history_visibility")
    return room.join_rule == "public" or visibility == "world_readable"


def _summary(room: Room, links: list[StateEvent]) -> JsonDict:
    guest = (room.content("m.room.guest_access") or {}).get("guest_access")
    visibility = (room.content("m.room.history_visibility") or {}).get("history_visibility")
    entry: JsonDict = {
        "room_id": room.room_id,
        "name": room.name,
        "topic": room.topic,
        "canonical_alias": (room.content("m.room.canonical_alias") or {}).get("alias"),
        "avatar_url": (room.content("m.room.avatar") or {}).get("url"),
        "num_joined_members": len(room.joined()),
        "room_type": room.room_type,
        "join_rule": room.join_rule,
        "guest_can_join": guest == "can_join",
        "world_readable": visibility == "world_readable",
        "children_state": [
            {
                "type": link.type,
                "state_key": link.state_key,
                "content": link.content,
                "sender": link.sender,
                "origin_server_ts": link.origin_server_ts,
            }
            for link in links
        ],
    }
    return {key: value for key, value in entry.items() if value is not None}


def walk(hs: HomeserverState, space: Room, user_id: str, max_depth: int | None) -> list[JsonDict]:
    """Depth-first walk from ``space``; inaccessible or unknown children are left out."""
    stack: list[tuple[Room, int]] = [(space, 0)]
    seen = {space.room_id}
    out: list[JsonDict] = []
    while stack:
        room, depth = stack.pop()
        links = child_links(room)
        out.append(_summary(room, links))
        if max_depth is not None and depth >= max_depth:
            continue
        children: list[Room] = []
        for link in links:
            child = hs.rooms.get(link.state_key)
            if child is None or child.room_id in seen or not _accessible(child, user_id):
                continue
            seen.add(child.room_id)
            children.append(child)
        stack.extend((child, depth + 1) for child in reversed(children))
    return out


def _int_param(call: Call, name: str) -> int | FakeResponse | None:
    raw = call.request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return matrix_error(400, "M_INVALID_PARAM", f"Query parameter {name!r} must be an integer")
    if value < 0 or (name == "limit" and value == 0):
        return matrix_error(400, "M_INVALID_PARAM", f"Query parameter {name!r} out of range")
    return value


def _start_offset(hs: HomeserverState, call: Call, max_depth: int | None) -> int | FakeResponse:
    token = call.request.query.get("from")
    if token is None:
        return 0
    batch = hs.batches.get(token)
    if batch is None:
        return matrix_error(400, "M_INVALID_PARAM", "Unknown pagination token")
    user_id, room_id, depth, offset = batch
    if (user_id, room_id, depth) != (call.user_id, call.params["room_id"], max_depth):
        return matrix_error(400, "M_INVALID_PARAM", "Pagination parameters don't match")
    return offset


def hierarchy(hs: HomeserverState, call: Call) -> FakeResponse:
    space = hs.joined_room(call)
    if isinstance(space, FakeResponse):
        return space
    limit = _int_param(call, "limit")
    max_depth = _int_param(call, "max_depth")
    if isinstance(limit, FakeResponse):
        return limit
    if isinstance(max_depth, FakeResponse):
        return max_depth
    offset = _start_offset(hs, call, max_depth)
    if isinstance(offset, FakeResponse):
        return offset
    size = _DEFAULT_LIMIT if limit is None else min(limit, _MAX_LIMIT)
    previous = call.request.query.get("from")
    rooms = hs.hierarchy_snapshots.pop(previous, None) if previous else None
    if rooms is None:
        rooms = walk(hs, space, call.user_id, max_depth)
    body: JsonDict = {"rooms": rooms[offset : offset + size]}
    if offset + size < len(rooms):
        token = hs.new_opaque()
        hs.batches[token] = (call.user_id, space.room_id, max_depth, offset + size)
        hs.hierarchy_snapshots[token] = rooms
        body["next_batch"] = token
    return ok(body)
