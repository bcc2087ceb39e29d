"""Small typed results parsed from Matrix responses; parsing fails loudly on a wrong shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.errors import MalformedResponse


def require_str(data: Any, key: str, where: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise MalformedResponse(200, f"{where}: missing string field {key!r}")
    return value


def require_list(data: Any, key: str, where: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise MalformedResponse(200, f"{where}: missing list field {key!r}")
    return value


def page_token(data: Any, key: str) -> str | None:
    """A pagination token; None (no more pages) when absent, empty or not a string."""
    token = data.get(key) if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None


@dataclass(frozen=True)
class LoginResult:
    user_id: str
    access_token: str = field(repr=False)
    device_id: str | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> LoginResult:
        device = data.get("device_id") if isinstance(data, dict) else None
        return cls(
            require_str(data, "user_id", where),
            require_str(data, "access_token", where),
            device if isinstance(device, str) else None,
        )


@dataclass(frozen=True)
class StateEvent:
    type: str
    state_key: str
    content: dict[str, Any]
    sender: str | None = None

    @classmethod
    def parse(cls, data: Any) -> StateEvent | None:
        if not isinstance(data, dict):
            return None
        event_type, key, content = data.get("type"), data.get("state_key"), data.get("content")
        if not isinstance(event_type, str) or not isinstance(key, str):
            return None
        sender = data.get("sender")
        return cls(
            event_type,
            key,
            content if isinstance(content, dict) else {},
            sender if isinstance(sender, str) else None,
        )


@dataclass(frozen=True)
class RoomEvent:
    """One event of a room's timeline, as `/messages` lists it."""

    type: str
    sender: str
    content: dict[str, Any]

    @classmethod
    def parse(cls, data: Any) -> RoomEvent | None:
        if not isinstance(data, dict):
            return None
        event_type, sender, content = data.get("type"), data.get("sender"), data.get("content")
        if not isinstance(event_type, str) or not isinstance(sender, str):
            return None
        return cls(event_type, sender, content if isinstance(content, dict) else {})


@dataclass(frozen=True)
class MessagesPage:
    events: tuple[RoomEvent, ...]
    # None when the server has nothing older: the start of the room was reached.
    end: str | None

    @classmethod
    def parse(cls, data: Any) -> MessagesPage:
        parsed = [RoomEvent.parse(event) for event in require_list(data, "chunk", "messages")]
        return cls(tuple(e for e in parsed if e is not None), page_token(data, "end"))


@dataclass(frozen=True)
class HierarchyRoom:
    room_id: str
    name: str | None
    room_type: str | None
    num_joined_members: int
    children_state: tuple[StateEvent, ...] = ()

    @classmethod
    def parse(cls, data: Any) -> HierarchyRoom | None:
        if not isinstance(data, dict) or not isinstance(data.get("room_id"), str):
            return None
        name, room_type = data.get("name"), data.get("room_type")
        members = data.get("num_joined_members")
        children = [StateEvent.parse(event) for event in data.get("children_state") or []]
        return cls(
            data["room_id"],
            name if isinstance(name, str) else None,
            room_type if isinstance(room_type, str) else None,
            members if isinstance(members, int) else 0,
            tuple(child for child in children if child is not None),
        )


@dataclass(frozen=True)
class HierarchyPage:
    rooms: tuple[HierarchyRoom, ...]
    next_batch: str | None

    @classmethod
    def parse(cls, data: Any) -> HierarchyPage:
        parsed = [HierarchyRoom.parse(room) for room in require_list(data, "rooms", "hierarchy")]
        return cls(tuple(r for r in parsed if r is not None), page_token(data, "next_batch"))
