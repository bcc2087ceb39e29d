"""Room state and message endpoints of the fake homeserver."""

from __future__ import annotations

import copy
import json

from app.testing.fake_http import FakeResponse
from app.testing.homeserver.model import (
    Call,
    HomeserverState,
    JsonDict,
    Room,
    TimelineEvent,
    matrix_error,
    ok,
)

# Synapse refuses an event whose PDU, as canonical JSON, exceeds 65,536 bytes.
MAX_PDU_BYTES = 65_536
MESSAGES_PAGE_LIMIT = 1_000


def _pdu_size(room: Room, sender: str, event_type: str, content: JsonDict) -> int:
    """The size of the event as Synapse measures it: content plus a typical envelope."""
    event_id = "$" + "x" * 43
    pdu = {
        "auth_events": [event_id] * 4,
        "content": content,
        "depth": len(room.timeline) + len(room.state) + 1,
        "hashes": {"sha256": "h" * 43},
        "origin_server_ts": 1_760_000_000_000,
        "prev_events": [event_id],
        "room_id": room.room_id,
        "sender": sender,
        "signatures": {sender.split(":", 1)[-1]: {"ed25519:a_AbCd": "s" * 86}},
        "type": event_type,
        "unsigned": {"age_ts": 1_760_000_000_000},
    }
    text = json.dumps(pdu, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return len(text.encode("utf-8"))


def _permission_error(room: Room, user_id: str, event_type: str, is_state: bool) -> FakeResponse:
    user_level = room.power_level(user_id)
    needed = room.required_level(event_type, is_state)
    return matrix_error(
        403,
        "M_FORBIDDEN",
        "You don't have permission to post that to the room. "
        f"user_level ({user_level}) < send_level ({needed})",
    )


def _may_send(room: Room, user_id: str, event_type: str, is_state: bool) -> bool:
    return room.power_level(user_id) >= room.required_level(event_type, is_state)


def get_state(hs: HomeserverState, call: Call) -> FakeResponse:
    """All current state; 403 (never 404) when the room is unknown or the caller not joined."""
    room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    return ok([event.to_json(room.room_id) for event in room.state.values()])


def get_state_event(hs: HomeserverState, call: Call) -> FakeResponse:
    """Like Synapse, a user who left may still read state (Synapse gives the state as of the
    leave; the fake gives the current state, close enough for membership checks)."""
    left = hs.rooms.get(call.params["room_id"])
    if left is not None and left.members.get(call.user_id) == "leave":
        room: Room | FakeResponse = left
    else:
        room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    key = (call.params["event_type"], call.params.get("state_key", ""))
    event = room.state.get(key)
    if event is None:
        return matrix_error(404, "M_NOT_FOUND", "Event not found.")
    if call.request.query.get("format") == "event":
        return ok(event.to_json(room.room_id))
    # A copy: over HTTP the caller gets bytes, and changing its dict must not change the room.
    return ok(copy.deepcopy(event.content))


def _joined_with_content(hs: HomeserverState, call: Call) -> tuple[Room, JsonDict] | FakeResponse:
    """The room the caller is joined to and the request's JSON object, or the error answer."""
    room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    content = call.request.json
    if not isinstance(content, dict):
        return matrix_error(400, "M_NOT_JSON", "Content not JSON.")
    return room, content


def put_state(hs: HomeserverState, call: Call) -> FakeResponse:
    """Needs membership and ``events[type]`` (or ``state_default``) power; dedupes no-ops."""
    checked = _joined_with_content(hs, call)
    if isinstance(checked, FakeResponse):
        return checked
    room, content = checked
    event_type = call.params["event_type"]
    if not _may_send(room, call.user_id, event_type, is_state=True):
        return _permission_error(room, call.user_id, event_type, is_state=True)
    state_key = call.params.get("state_key", "")
    event = hs.set_state(room, event_type, state_key, content, call.user_id)
    return ok({"event_id": event.event_id})


def send(hs: HomeserverState, call: Call) -> FakeResponse:
    """Send a message event; a repeated (token, path) transaction returns the first event id."""
    checked = _joined_with_content(hs, call)
    if isinstance(checked, FakeResponse):
        return checked
    room, content = checked
    assert call.session is not None
    txn_key = (call.session.token, call.request.path)
    if txn_key in room.txns:
        return ok({"event_id": room.txns[txn_key]})
    event_type = call.params["event_type"]
    if not _may_send(room, call.user_id, event_type, is_state=False):
        return _permission_error(room, call.user_id, event_type, is_state=False)
    if _pdu_size(room, call.user_id, event_type, content) > MAX_PDU_BYTES:
        return matrix_error(413, "M_TOO_LARGE", "event too large")
    event = TimelineEvent(
        hs.new_event_id(),
        event_type,
        call.user_id,
        dict(content),
        call.params["txn_id"],
        hs.now(),
    )
    room.timeline.append(event)
    room.txns[txn_key] = event.event_id
    return ok({"event_id": event.event_id})


def messages(hs: HomeserverState, call: Call) -> FakeResponse:
    """``/messages`` backwards (``dir=b``) from the newest event; tokens are timeline offsets.

    Only message events are listed (the fake keeps state apart); ``end`` is left out once the
    start of the room is reached, as Synapse does.
    """
    room = hs.joined_room(call)
    if isinstance(room, FakeResponse):
        return room
    if call.request.query.get("dir") != "b":
        return matrix_error(400, "M_INVALID_PARAM", "the fake pages backwards only (dir=b)")
    start = call.request.query.get("from") or f"t{len(room.timeline)}"
    try:
        before = int(start.removeprefix("t"))
        limit = min(int(call.request.query.get("limit") or 10), MESSAGES_PAGE_LIMIT)
    except ValueError:
        return matrix_error(400, "M_INVALID_PARAM", "bad from or limit")
    first = max(0, before - limit)
    chunk = [
        {
            "type": e.type,
            "sender": e.sender,
            "content": e.content,
            "event_id": e.event_id,
            "room_id": room.room_id,
            "origin_server_ts": e.origin_server_ts,
        }
        for e in reversed(room.timeline[first:before])
    ]
    answer: JsonDict = {"chunk": chunk, "start": start}
    if first > 0:
        answer["end"] = f"t{first}"
    return ok(answer)
