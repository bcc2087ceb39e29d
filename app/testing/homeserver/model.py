"""The fake homeserver's state and what its handlers share: the records (see `records`), the
id factories, sessions, state writes and the error answers."""

from __future__ import annotations

import base64
import random
import re
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.homeserver.records import (
    CREATOR_LEVEL,
    JsonDict,
    Room,
    Session,
    StateEvent,
    TimelineEvent,
    User,
)

if TYPE_CHECKING:
    from app.testing.homeserver.appservice import FakeAppservice


LOCALPART_RE = re.compile(r"[a-z0-9._=\-/+]+")
_URLSAFE = string.ascii_letters + string.digits + "-_"
_BASE_TS = 1_700_000_000_000


def matrix_error(status: int, errcode: str, error: str, **extra: Any) -> FakeResponse:
    """A Matrix error response ``{"errcode", "error", ...}``."""
    return FakeResponse(status, {"errcode": errcode, "error": error, **extra})


def ok(body: Any = None) -> FakeResponse:
    """A 200 response; ``None`` becomes ``{}``."""
    return FakeResponse(200, {} if body is None else body)


@dataclass(frozen=True)
class Call:
    """What a handler receives: the request, the path groups and the caller's session."""

    request: FakeRequest
    params: dict[str, str]
    session: Session | None = None

    @property
    def user_id(self) -> str:
        if self.session is None:
            raise RuntimeError("this endpoint was registered without authentication")
        return self.session.user_id

    def body(self) -> JsonDict:
        payload = self.request.json
        return payload if isinstance(payload, dict) else {}


@dataclass
class HomeserverState:
    """Everything the fake homeserver knows; handlers mutate it."""

    server_name: str
    rng: random.Random
    # The version of rooms made without one (Synapse's `default_room_version`).
    default_room_version: str = "12"
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    rooms: dict[str, Room] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    batches: dict[str, tuple[str, str, int | None, int]] = field(default_factory=dict)
    # Pagination sessions keep the hierarchy they started with (as Synapse caches it), so a
    # page costs O(page) instead of a fresh walk of the whole space.
    hierarchy_snapshots: dict[str, list[JsonDict]] = field(default_factory=dict)
    # user id -> ids of the rooms they are joined to (an ordered set), kept by set_state.
    joined_index: dict[str, dict[str, None]] = field(default_factory=dict)
    # `/sync` answers by (token, since, filter): Synapse's response cache (see `sync`).
    sync_cache: dict[tuple[str | None, ...], FakeResponse] = field(default_factory=dict)
    # Rooms deleted through the admin API: gone for every request but `/sync`'s leave section.
    deleted_rooms: dict[str, Room] = field(default_factory=dict)
    logins: int = 0
    devices_created: int = 0
    clock: int = 0
    stream: int = 0
    # `enable_registration`; an appservice registers its users even when it is off.
    registration_open: bool = True
    appservice: FakeAppservice | None = None

    def _random(self, alphabet: str, length: int) -> str:
        if alphabet == _URLSAFE:  # the common case, done in one call rather than per character
            raw = base64.urlsafe_b64encode(self.rng.randbytes(length)).decode("ascii")
            return raw.rstrip("=")[:length]
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def new_room_id(self) -> str:
        return "!" + self._random(_URLSAFE, 43)

    def new_event_id(self) -> str:
        return "$" + self._random(_URLSAFE, 43)

    def new_opaque(self, prefix: str = "") -> str:
        return prefix + self._random(string.ascii_letters + string.digits, 24)

    def now(self) -> int:
        """A strictly increasing fake timestamp in milliseconds."""
        self.clock += 1
        return _BASE_TS + self.clock

    def user_id_for(self, name: str) -> str:
        """``name`` or ``@name:server`` as a full user id (localpart lower-cased)."""
        if name.startswith("@"):
            localpart, _, server = name[1:].partition(":")
            return f"@{localpart.lower()}:{server or self.server_name}"
        return f"@{name.lower()}:{self.server_name}"

    def check_localpart(self, localpart: str) -> FakeResponse | None:
        """The error Synapse gives for an unusable localpart, or ``None`` if it is free."""
        if not LOCALPART_RE.fullmatch(localpart):
            return matrix_error(
                400,
                "M_INVALID_USERNAME",
                "User ID can only contain characters a-z, 0-9, or '=_-./+'",
            )
        if localpart.startswith("_"):
            return matrix_error(400, "M_INVALID_USERNAME", "User ID may not begin with _")
        if self.appservice is not None and self.appservice.reserves(self.user_id_for(localpart)):
            message = "This user ID is reserved by an application service."
            return matrix_error(400, "M_EXCLUSIVE", message)
        if len(self.user_id_for(localpart)) > 255:
            return matrix_error(400, "M_INVALID_USERNAME", "User ID may not be longer than 255")
        if self.user_id_for(localpart) in self.users:
            return matrix_error(400, "M_USER_IN_USE", "User ID already taken.")
        return None

    def create_user(self, localpart: str, password: str) -> User:
        user = User(self.user_id_for(localpart), password, displayname=localpart)
        self.users[user.user_id] = user
        return user

    def open_session(
        self, user_id: str, device_id: str | None = None, count_device: bool = True
    ) -> Session:
        """Issue a token; a new device unless ``device_id`` is already one of the user's."""
        user = self.users[user_id]
        if device_id is not None and device_id in user.devices:
            self._drop_device_tokens(user_id, device_id)
        else:
            device_id = device_id or self._random(string.ascii_uppercase, 10)
            user.devices[device_id] = None
            self.devices_created += int(count_device)
        session = Session(self.new_opaque("syt_"), user_id, device_id)
        self.sessions[session.token] = session
        return session

    def drop_all_tokens(self, user_id: str) -> None:
        """Log the user out everywhere: every device and access token goes."""
        for token, session in list(self.sessions.items()):
            if session.user_id == user_id:
                del self.sessions[token]
        self.users[user_id].devices.clear()

    def _drop_device_tokens(self, user_id: str, device_id: str) -> None:
        for token, session in list(self.sessions.items()):
            if session.user_id == user_id and session.device_id == device_id:
                del self.sessions[token]

    def set_state(
        self, room: Room, event_type: str, state_key: str, content: JsonDict, sender: str
    ) -> StateEvent:
        """Store a state event; an identical event is de-duplicated like Synapse does."""
        current = room.state.get((event_type, state_key))
        if current is not None and current.content == content and current.sender == sender:
            return current
        self.stream += 1
        event = StateEvent(
            event_type,
            state_key,
            dict(content),
            sender,
            self.new_event_id(),
            self.now(),
            self.stream,
        )
        room.state[(event_type, state_key)] = event
        room.log.append(event)
        if event_type == "m.room.member":
            membership = str(content.get("membership", "leave"))
            room.members[state_key] = membership
            rooms = self.joined_index.setdefault(state_key, {})
            if membership == "join":
                rooms[room.room_id] = None
            else:
                rooms.pop(room.room_id, None)
        return event

    def joined_rooms_of(self, user_id: str) -> list[str]:
        return list(self.joined_index.get(user_id, {}))

    def forget_room(self, room_id: str) -> None:
        """Synapse's room deletion: every member is made to leave, then the room is gone."""
        room = self.rooms.pop(room_id, None)
        if room is None:
            return
        for user_id in room.joined():
            self.set_membership(room, user_id, "leave", user_id)
        self.deleted_rooms[room_id] = room

    def set_membership(self, room: Room, user_id: str, membership: str, sender: str) -> None:
        content: JsonDict = {"membership": membership}
        user = self.users.get(user_id)
        if membership == "join" and user is not None and user.displayname is not None:
            content["displayname"] = user.displayname
        self.set_state(room, "m.room.member", user_id, content, sender)

    def joined_room(self, call: Call) -> Room | FakeResponse:
        """The room of ``call.params['room_id']`` if the caller is joined, else a 403."""
        room_id = call.params["room_id"]
        room = self.rooms.get(room_id)
        if room is None or not room.is_joined(call.user_id):
            return matrix_error(403, "M_FORBIDDEN", f"User {call.user_id} not in room {room_id}")
        return room


__all__ = [
    "CREATOR_LEVEL",
    "Call",
    "HomeserverState",
    "JsonDict",
    "Room",
    "Session",
    "StateEvent",
    "TimelineEvent",
    "User",
    "matrix_error",
    "ok",
]
