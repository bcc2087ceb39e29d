"""What a test reads back from the fake homeserver: plain frozen values, detached from its state.

The fake's own records (``model.Room``, ``TimelineEvent``, ``StateEvent``) change as the
fake serves requests; these values are copies, safe to keep and compare.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from app.sync.history import spoken_text
from app.testing.homeserver.model import Room


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Message:
    """One event of a room's timeline (sent through ``PUT /rooms/{id}/send``).

    ``body`` is ``content["body"]`` when that is a string, else ``None``. ``content`` is a
    read-only copy of the whole event content (``msgtype``, custom keys). ``text`` is the
    Letta line an imported history event carries: a user's line without the "User wrote:"
    label and quoting it is shown with, any other body as it is.
    """

    sender: str
    body: str | None
    event_id: str
    event_type: str = "m.room.message"
    content: Mapping[str, Any] = field(default_factory=_empty, hash=False, repr=False)

    @property
    def text(self) -> str | None:
        return None if self.body is None else spoken_text(dict(self.content))


@dataclass(frozen=True)
class StateEntry:
    """One current state event of a room."""

    event_type: str
    state_key: str
    sender: str
    content: Mapping[str, Any] = field(hash=False)
    event_id: str = ""


def _frozen_copy(content: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only deep copy: nested lists and objects are detached from the fake's state."""
    return MappingProxyType(copy.deepcopy(dict(content)))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def room_messages(room: Room) -> list[Message]:
    """The room's timeline, oldest first (state changes are not in it)."""
    return [
        Message(
            sender=event.sender,
            body=_text(event.content.get("body")),
            event_id=event.event_id,
            event_type=event.type,
            content=_frozen_copy(event.content),
        )
        for event in room.timeline
    ]


def room_state(room: Room, event_type: str | None = None) -> list[StateEntry]:
    """The room's current state events (of one type if given), in the order
    each (type, state key) first appeared."""
    return [
        StateEntry(
            event_type=event.type,
            state_key=event.state_key,
            sender=event.sender,
            content=_frozen_copy(event.content),
            event_id=event.event_id,
        )
        for event in room.state.values()
        if event_type is None or event.type == event_type
    ]
