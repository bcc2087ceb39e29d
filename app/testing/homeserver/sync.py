"""``GET /_matrix/client/v3/sync`` of the fake homeserver, for the state the library reads.

What it models, as Synapse answers it:

- an inline JSON ``filter``: ``room.state.types`` and ``room.timeline.types`` (a trailing
  ``*`` matches a prefix), ``room.timeline.limit`` and ``room.include_leave``;
- since-tokens: a room appears only when a matching event was sent after the token; its new
  events are in ``timeline`` (the newest ``limit``, with ``limited``), and what changed before
  those is in ``state``. A room the user joined after the token comes with its whole state;
- ``rooms.leave``: a room the user left, was kicked or banned from (or that was deleted), with
  the state as it was at that moment;
- a token that is not one of the server's is refused with 400 ``M_UNKNOWN``;
- Synapse keeps each response for ``sync_response_cache_duration`` (two minutes by default)
  and answers the same request (user, device, since-token, filter, timeout) from it; not
  one whose ``next_batch`` equals its since-token. The fake keeps them for good.

Only state events are modelled: message events never appear in this fake's ``/sync``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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

DEFAULT_TIMELINE_LIMIT = 10


@dataclass(frozen=True)
class _Filter:
    state_types: tuple[str, ...] | None
    timeline_types: tuple[str, ...] | None
    limit: int
    include_leave: bool


def _types(section: object) -> tuple[str, ...] | None:
    types = section.get("types") if isinstance(section, dict) else None
    return tuple(t for t in types if isinstance(t, str)) if isinstance(types, list) else None


def _parse_filter(text: str | None) -> _Filter | FakeResponse:
    if text is None:
        return _Filter(None, None, DEFAULT_TIMELINE_LIMIT, False)
    if not text.startswith("{"):
        return matrix_error(400, "M_UNKNOWN", "This fake supports inline JSON filters only")
    try:
        body = json.loads(text)
    except ValueError:
        return matrix_error(400, "M_NOT_JSON", "Filter is not valid JSON")
    found = body.get("room") if isinstance(body, dict) else None
    room: JsonDict = found if isinstance(found, dict) else {}
    timeline: JsonDict = room["timeline"] if isinstance(room.get("timeline"), dict) else {}
    limit = timeline.get("limit", DEFAULT_TIMELINE_LIMIT)
    return _Filter(
        _types(room.get("state")),
        _types(timeline),
        limit if isinstance(limit, int) and limit >= 0 else DEFAULT_TIMELINE_LIMIT,
        room.get("include_leave") is True,
    )


def _matches(types: tuple[str, ...] | None, event_type: str) -> bool:
    if types is None:
        return True
    return any(event_type.startswith(t[:-1]) if t.endswith("*") else event_type == t for t in types)


def _parse_since(hs: HomeserverState, since: str | None) -> int | FakeResponse | None:
    if since is None:
        return None
    digits = since[1:]
    if not since.startswith("s") or not digits.isdigit() or int(digits) > hs.stream:
        return matrix_error(400, "M_UNKNOWN", "Invalid stream token")
    return int(digits)


def _state_at(room: Room, until: int, types: tuple[str, ...] | None) -> list[StateEvent]:
    """The room's state as it was once event `until` of the stream was sent."""
    state: dict[tuple[str, str], StateEvent] = {}
    for event in room.log:
        if event.stream > until:
            break
        if _matches(types, event.type):
            state[(event.type, event.state_key)] = event
    return list(state.values())


def _entry(
    room: Room, since: int | None, until: int, filt: _Filter, joined_at: int
) -> JsonDict | None:
    """One room of the response, or None when nothing the filter selects changed."""
    if since is None or joined_at > since:
        state = _state_at(room, until, filt.state_types)
        return _room_json(room, state, [], limited=False)
    changed = [
        event
        for event in room.log
        if since < event.stream <= until and _matches(filt.timeline_types, event.type)
    ]
    if not changed:
        return None
    cut = max(0, len(changed) - filt.limit)
    latest: dict[tuple[str, str], StateEvent] = {}
    for event in changed[:cut]:
        if _matches(filt.state_types, event.type):
            latest[(event.type, event.state_key)] = event
    return _room_json(room, list(latest.values()), changed[cut:], limited=cut > 0)


def _room_json(
    room: Room, state: list[StateEvent], timeline: list[StateEvent], *, limited: bool
) -> JsonDict:
    return {
        "state": {"events": [event.to_json(room.room_id) for event in state]},
        "timeline": {
            "events": [event.to_json(room.room_id) for event in timeline],
            "limited": limited,
        },
    }


def sync(hs: HomeserverState, call: Call) -> FakeResponse:
    query = call.request.query
    assert call.session is not None
    key = (call.session.token, query.get("since"), query.get("filter"), query.get("timeout"))
    cached = hs.sync_cache.get(key)
    if cached is not None:
        return cached
    answer = _sync(hs, call)
    body = answer.json if isinstance(answer.json, dict) else {}
    if answer.status == 200 and body.get("next_batch") != query.get("since"):
        hs.sync_cache[key] = answer
    return answer


def _sync(hs: HomeserverState, call: Call) -> FakeResponse:
    filt = _parse_filter(call.request.query.get("filter"))
    if isinstance(filt, FakeResponse):
        return filt
    since = _parse_since(hs, call.request.query.get("since"))
    if isinstance(since, FakeResponse):
        return since
    user, now = call.user_id, hs.stream
    joined: JsonDict = {}
    left: JsonDict = {}
    for room in [*hs.rooms.values(), *hs.deleted_rooms.values()]:
        member = room.state.get(("m.room.member", user))
        if member is None:
            continue
        membership = member.content.get("membership")
        if membership == "join":
            entry = _entry(room, since, now, filt, member.stream)
            if entry is not None:
                joined[room.room_id] = entry
        elif membership in ("leave", "ban") and filt.include_leave:
            if since is None or member.stream > since:
                state = _state_at(room, member.stream, filt.state_types)
                left[room.room_id] = _room_json(room, state, [], limited=False)
    rooms = {"join": joined, "leave": left, "invite": {}}
    return ok({"next_batch": f"s{now}", "rooms": rooms})
