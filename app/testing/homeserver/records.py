"""Records of the fake homeserver: users, sessions, state and timeline events, rooms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]
# Room version 12 gives creators an infinite power level; any level above 100 acts alike.
CREATOR_LEVEL = 2**53


def _as_int(value: Any, default: int) -> int:
    """A power level as an int (Synapse also accepts numeric strings)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass
class User:
    user_id: str
    password: str
    displayname: str | None
    devices: dict[str, None] = field(default_factory=dict)  # ids, in creation order
    # Synapse keeps a deactivated user (the name stays taken) but refuses every login.
    deactivated: bool = False
    server_admin: bool = False


@dataclass(frozen=True)
class Session:
    token: str
    user_id: str
    device_id: str


@dataclass
class StateEvent:
    type: str
    state_key: str
    content: JsonDict
    sender: str
    event_id: str
    origin_server_ts: int
    # Position in the server's event stream: what `/sync` since-tokens count.
    stream: int = 0

    def to_json(self, room_id: str) -> JsonDict:
        return {
            "type": self.type,
            "state_key": self.state_key,
            "content": self.content,
            "sender": self.sender,
            "event_id": self.event_id,
            "room_id": room_id,
            "origin_server_ts": self.origin_server_ts,
        }


@dataclass
class TimelineEvent:
    """A non-state event sent through ``PUT /send`` (state changes are not listed here)."""

    event_id: str
    type: str
    sender: str
    content: JsonDict
    txn_id: str | None
    origin_server_ts: int


@dataclass
class Room:
    room_id: str
    creator: str
    members: dict[str, str] = field(default_factory=dict)
    state: dict[tuple[str, str], StateEvent] = field(default_factory=dict)
    timeline: list[TimelineEvent] = field(default_factory=list)
    txns: dict[tuple[str, str], str] = field(default_factory=dict)
    # Every state event in the order it was sent, for `/sync` deltas.
    log: list[StateEvent] = field(default_factory=list)

    def content(self, event_type: str, state_key: str = "") -> JsonDict | None:
        event = self.state.get((event_type, state_key))
        return None if event is None else event.content

    def is_joined(self, user_id: str) -> bool:
        return self.members.get(user_id) == "join"

    def joined(self) -> list[str]:
        return [user for user, membership in self.members.items() if membership == "join"]

    def _string(self, event_type: str, key: str) -> str | None:
        value = (self.content(event_type) or {}).get(key)
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        return self._string("m.room.name", "name")

    @property
    def topic(self) -> str | None:
        return self._string("m.room.topic", "topic")

    @property
    def join_rule(self) -> str:
        return self._string("m.room.join_rules", "join_rule") or "invite"

    @property
    def room_type(self) -> str | None:
        return self._string("m.room.create", "type")

    @property
    def version(self) -> str:
        return self._string("m.room.create", "room_version") or "12"

    def creators(self) -> set[str]:
        """Room version 12: the creator and the `additional_creators` of the create event."""
        extra = (self.content("m.room.create") or {}).get("additional_creators") or []
        return {self.creator, *(user for user in extra if isinstance(user, str))}

    def power_level(self, user_id: str) -> int:
        if self.version == "12" and user_id in self.creators():
            return CREATOR_LEVEL  # creators outrank everyone, for ever
        levels = self.content("m.room.power_levels") or {}
        users = levels.get("users") or {}
        return _as_int(users.get(user_id, levels.get("users_default")), 0)

    def required_level(self, event_type: str, is_state: bool) -> int:
        levels = self.content("m.room.power_levels") or {}
        events = levels.get("events") or {}
        default_key = "state_default" if is_state else "events_default"
        fallback = _as_int(levels.get(default_key), 50 if is_state else 0)
        return _as_int(events.get(event_type), fallback)

    def action_level(self, action: str) -> int:
        levels = self.content("m.room.power_levels") or {}
        return _as_int(levels.get(action), 0 if action == "invite" else 50)
