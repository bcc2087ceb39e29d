"""What the homeserver holds, as one account's filtered `/sync` states it.

A `HomeserverView` is the watched state (a few event types) of every room the account is
joined to, with the `next_batch` token it is current at. The first read asks for all of it;
later reads send the token and receive only what changed, so a read costs one request
whatever the number of rooms. Rooms the account left, was kicked or banned from arrive in
the `leave` section and drop out of the view.

The view only ever holds what the homeserver said: the caller's own writes show up in the
next read, so a saved view and its token always agree.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from app.errors import MalformedResponse, MatrixError
from app.matrix.client import MatrixClient
from app.matrix.types import StateEvent, require_str

log = logging.getLogger(__name__)

# 2: power levels and the creation event are watched too (a view of format 1 lacks them).
VIEW_FORMAT = 2
MEMBER = "m.room.member"
CREATE = "m.room.create"
# Newest events per changed room in one read; older changes come folded into `state`.
TIMELINE_LIMIT = 50
FULL_READ_TIMEOUT_MS = 997
FULL_READ_EVERY = 24 * 3600.0  # seconds
# Counts full reads from a random start: consecutive ones in a process never share a timeout.
_FULL_READS = itertools.count(secrets.randbelow(FULL_READ_TIMEOUT_MS))
Key = tuple[str, str]


@dataclass
class RoomState:
    """The watched state events of one room: (type, state_key) -> content."""

    events: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def content(self, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        return self.events.get((event_type, state_key))

    def membership(self, user_id: str) -> str | None:
        value = (self.content(MEMBER, user_id) or {}).get("membership")
        return value if isinstance(value, str) else None

    def state_keys(self, event_type: str) -> list[str]:
        """State keys of `event_type` whose content is not empty (empty content removes)."""
        return [
            key for (kind, key), content in self.events.items() if kind == event_type and content
        ]

    def put(self, event: StateEvent) -> None:
        content = event.content
        if event.type == MEMBER:  # the display name and avatar are of no use here
            content = {"membership": content.get("membership")}
        elif event.type == CREATE:
            # From room version 12 on, the creator (the sender) holds power no level states.
            content = {**content, "sender": event.sender}
        self.events[(event.type, event.state_key)] = content


@dataclass(frozen=True)
class SyncDelta:
    next_batch: str
    # room id -> its state events then its timeline's, in the order they happened
    joined: dict[str, list[StateEvent]]
    left: dict[str, list[StateEvent]]

    @classmethod
    def parse(cls, data: Any) -> SyncDelta:
        token = require_str(data, "next_batch", "sync")
        rooms = data.get("rooms") if isinstance(data.get("rooms"), dict) else {}
        return cls(token, _section(rooms.get("join")), _section(rooms.get("leave")))


def _section(section: Any) -> dict[str, list[StateEvent]]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise MalformedResponse(200, "sync: a rooms section is not an object")
    return {room_id: _events(entry) for room_id, entry in section.items()}


def _events(entry: Any) -> list[StateEvent]:
    events: list[StateEvent] = []
    for part in ("state", "timeline"):
        block = entry.get(part) if isinstance(entry, dict) else None
        raw = block.get("events") if isinstance(block, dict) else None
        for item in raw if isinstance(raw, list) else []:
            parsed = StateEvent.parse(item)
            if parsed is not None:  # message events have no state_key
                events.append(parsed)
    return events


@dataclass
class HomeserverView:
    homeserver: str
    user_id: str
    # The token to read the next changes from.
    next_batch: str
    rooms: dict[str, RoomState] = field(default_factory=dict)
    # The token the rooms were last saved at: the view may have moved on since with nothing
    # changed, and only the token was saved (`Store.save_view_token`).
    saved_at: str | None = None
    # When the rooms were last read in full (Unix time): a view is read in full again once a
    # day, so that whatever a since-token cannot convey (a redacted state event, a homeserver
    # restored from a backup, which answers an unknown token as if nothing happened) is
    # corrected within a day.
    read_at: float = 0.0

    def room(self, room_id: str) -> RoomState | None:
        return self.rooms.get(room_id)

    def joined(self) -> set[str]:
        return set(self.rooms)

    def joined_by(self, client: MatrixClient) -> set[str]:
        """Of this view's rooms, those another account is joined to."""
        user = client.user_id or ""
        return {room_id for room_id, room in self.rooms.items() if room.membership(user) == "join"}

    def apply(self, delta: SyncDelta) -> bool:
        """Fold a delta in; True when a watched event changed (the view is worth saving)."""
        changed = bool(delta.joined or delta.left)
        for room_id in delta.left:
            self.rooms.pop(room_id, None)
        for room_id, events in delta.joined.items():
            room = self.rooms.setdefault(room_id, RoomState())
            for event in events:
                room.put(event)
        self.next_batch = delta.next_batch
        return changed

    def to_json(self) -> dict[str, Any]:
        return {
            "format": VIEW_FORMAT,
            "homeserver": self.homeserver,
            "user_id": self.user_id,
            "next_batch": self.next_batch,
            "read_at": self.read_at,
            "rooms": {
                room_id: [[kind, key, content] for (kind, key), content in room.events.items()]
                for room_id, room in self.rooms.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> HomeserverView | None:
        """A saved view, or None when it is of another format or damaged (read afresh)."""
        try:
            if data.get("format") != VIEW_FORMAT:
                return None
            rooms = {
                room_id: RoomState({(kind, key): content for kind, key, content in entries})
                for room_id, entries in data["rooms"].items()
            }
            saved_at = str(data["next_batch"])
            moved_on = data.get("moved_on_to")
            current = moved_on if isinstance(moved_on, str) else saved_at
            read_at = float(data.get("read_at", 0.0))
            view = cls(str(data["homeserver"]), str(data["user_id"]), current, rooms, saved_at)
            view.read_at = read_at
            return view
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def view_filter(types: tuple[str, ...], include_leave: bool) -> str:
    """Only the watched state: no presence, account data, receipts or messages."""
    nothing: dict[str, Any] = {"types": []}
    room = {
        "state": {"types": list(types), "lazy_load_members": False},
        "timeline": {"types": list(types), "limit": TIMELINE_LIMIT},
        "ephemeral": nothing,
        "account_data": nothing,
        "include_leave": include_leave,
    }
    body = {"room": room, "presence": nothing, "account_data": nothing}
    return json.dumps(body, separators=(",", ":"))


async def read_view(
    client: MatrixClient,
    saved: HomeserverView | None,
    types: tuple[str, ...],
    homeserver: str,
    now: float,
) -> tuple[HomeserverView, bool]:
    """The view now, and whether it differs from `saved`. With a saved view of this account on
    this homeserver, less than `FULL_READ_EVERY` old, only the changes are read; a token the
    homeserver refuses means a full read, never a guess."""
    user_id = client.user_id or ""
    if saved is not None and (saved.user_id, saved.homeserver) == (user_id, homeserver):
        if now - saved.read_at < FULL_READ_EVERY:
            delta = await _changes(client, types, saved.next_batch)
            if delta is not None:
                return saved, saved.apply(delta)
    # Synapse answers a repeated request from a cache for two minutes, and its key holds the
    # timeout: a fresh one makes this full read a fresh answer. Without a since-token the
    # answer comes at once anyway.
    timeout_ms = 1 + next(_FULL_READS) % FULL_READ_TIMEOUT_MS
    delta = SyncDelta.parse(await client.sync(view_filter(types, False), timeout_ms=timeout_ms))
    view = HomeserverView(homeserver, user_id, delta.next_batch, read_at=now)
    view.apply(delta)
    return view, True


async def _changes(client: MatrixClient, types: tuple[str, ...], since: str) -> SyncDelta | None:
    """What changed since `since`, or None when the homeserver refuses that token."""
    try:
        return SyncDelta.parse(await client.sync(view_filter(types, True), since))
    except MatrixError as exc:
        if exc.status != 400:
            raise
        log.warning("the homeserver refused the saved sync token (%s); reading afresh", exc)
        return None
