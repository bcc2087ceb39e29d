"""A stateful in-memory Matrix homeserver that answers like Synapse 1.163 where the library
depends on it. Each of these was checked against a real Synapse, and the contract tier
(tests/contract) runs the fake's scenarios there too:

- room ids have no server part (room version 12);
- reading the state of an unknown room, or of a room the caller is not in, is 403
  ``M_FORBIDDEN``, never 404; a user who left may still read a state event;
- only a user may set their own display name (an admin's token gets 403);
- ``register`` with the ``m.login.dummy`` stage returns a token; ``register/available`` answers
  400 ``M_USER_IN_USE`` for a taken name; every password login creates a new device;
- joining a room twice is fine; a repeated send transaction returns the first event id;
- ``/hierarchy`` pages hold at most 50 rooms and continue with ``next_batch``;
- ``/sync`` with inline filters, since-tokens, state deltas and the leave section (see
  ``sync``); kicks, bans and upgrades follow the room-version-12 rules (see ``moderation``);
- a deactivated account keeps its name (``M_USER_IN_USE``), loses its tokens and every room,
  and its login is refused exactly like a wrong password (403 ``M_FORBIDDEN``): only the admin
  API (``/_synapse/admin/v2/users/{id}``, for server admins) tells; an admin's password reset
  logs the user out everywhere.

Core: ``FakeHomeserver.handle(FakeRequest) -> FakeResponse`` (no httpx). Adapter:
``FakeHomeserver.mount(router)`` registers one respx route per endpoint, named by its kind.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from typing import Any

from app.identity.registration import AppserviceRegistration
from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.fake_routing import Endpoint, RoutedFake, RouteHandler
from app.testing.homeserver import account, appservice, moderation, rooms, space, state, sync
from app.testing.homeserver.model import (
    Call,
    HomeserverState,
    JsonDict,
    Room,
    Session,
    matrix_error,
)
from app.testing.homeserver.readback import Message, StateEntry, room_messages, room_state

HsHandler = Callable[[HomeserverState, Call], FakeResponse]

_V3 = "/_matrix/client/v3"
_ROOM = _V3 + "/rooms/(?P<room_id>[^/]+)"
_STATE_EVENT = _ROOM + "/state/(?P<event_type>[^/]+)(?:/(?P<state_key>.*))?"

# (kind, method, path regex, handler, needs an access token)
_ROUTES: tuple[tuple[str, str, str, HsHandler, bool], ...] = (
    ("versions", "GET", "/_matrix/client/versions", account.versions, False),
    ("register", "POST", _V3 + "/register", account.register, False),
    (
        "register_available",
        "GET",
        _V3 + "/register/available",
        account.register_available,
        False,
    ),
    ("login", "POST", _V3 + "/login", account.login, False),
    ("server_keys", "GET", "/_matrix/key/v2/server", account.server_keys, False),
    (
        "admin_user",
        "GET",
        "/_synapse/admin/v2/users/(?P<user_id>[^/]+)",
        account.admin_user,
        True,
    ),
    ("whoami", "GET", _V3 + "/account/whoami", account.whoami, True),
    (
        "set_displayname",
        "PUT",
        _V3 + "/profile/(?P<user_id>.+)/displayname",
        account.set_displayname,
        True,
    ),
    (
        "get_displayname",
        "GET",
        _V3 + "/profile/(?P<user_id>.+)/displayname",
        account.get_displayname,
        False,
    ),
    ("createRoom", "POST", _V3 + "/createRoom", rooms.create_room, True),
    (
        "join",
        "POST",
        _V3 + "/(?:join/(?P<target>[^/]+)|rooms/(?P<room_id>[^/]+)/join)",
        rooms.join,
        True,
    ),
    ("leave", "POST", _ROOM + "/leave", rooms.leave, True),
    ("invite", "POST", _ROOM + "/invite", rooms.invite, True),
    ("joined_rooms", "GET", _V3 + "/joined_rooms", rooms.joined_rooms, True),
    ("joined_members", "GET", _ROOM + "/joined_members", rooms.joined_members, True),
    ("get_state", "GET", _ROOM + "/state", state.get_state, True),
    ("get_state_event", "GET", _STATE_EVENT, state.get_state_event, True),
    ("put_state", "PUT", _STATE_EVENT, state.put_state, True),
    (
        "send",
        "PUT",
        _ROOM + "/send/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)",
        state.send,
        True,
    ),
    ("room_messages", "GET", _ROOM + "/messages", state.messages, True),
    ("sync", "GET", _V3 + "/sync", sync.sync, True),
    ("kick", "POST", _ROOM + "/kick", moderation.kick, True),
    ("ban", "POST", _ROOM + "/ban", moderation.ban, True),
    ("unban", "POST", _ROOM + "/unban", moderation.unban, True),
    ("upgrade", "POST", _ROOM + "/upgrade", moderation.upgrade, True),
    (
        "hierarchy",
        "GET",
        "/_matrix/client/v1/rooms/(?P<room_id>[^/]+)/hierarchy",
        space.hierarchy,
        True,
    ),
)


class FakeHomeserver(RoutedFake):
    """In-memory homeserver; the module docstring lists the Synapse behaviour it models.

    ``seed`` makes room ids, event ids, tokens and device ids reproducible.
    """

    def __init__(
        self,
        server_name: str = "localhost",
        base_url: str = "http://localhost:8008",
        seed: int | None = None,
        default_room_version: str = "12",
    ) -> None:
        self.server_name = server_name
        self._hs = HomeserverState(server_name, random.Random(seed), default_room_version)
        endpoints = [
            Endpoint(kind, method, pattern, self._bind(handler, needs_auth))
            for kind, method, pattern, handler, needs_auth in _ROUTES
        ]
        super().__init__(base_url, endpoints)

    # -- counters -------------------------------------------------------------------------

    @property
    def logins(self) -> int:
        """Successful password logins (``POST /login``)."""
        return self._hs.logins

    @property
    def devices_created(self) -> int:
        """Devices created by registration and login."""
        return self._hs.devices_created

    # -- core -----------------------------------------------------------------------------

    def unrecognized(self, request: FakeRequest, method_mismatch: bool) -> FakeResponse:
        if method_mismatch:
            return matrix_error(405, "M_UNRECOGNIZED", "Unrecognized request")
        return matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request")

    def _bind(self, handler: HsHandler, needs_auth: bool) -> RouteHandler:
        def run(request: FakeRequest, params: dict[str, str]) -> FakeResponse:
            session: Session | None = None
            if needs_auth:
                found = self._authenticate(request)
                if isinstance(found, FakeResponse):
                    return found
                session = found
            return handler(self._hs, Call(request, params, session))

        return run

    def _authenticate(self, request: FakeRequest) -> Session | FakeResponse:
        token = request.bearer_token() or request.query.get("access_token")
        if not token:
            return matrix_error(401, "M_MISSING_TOKEN", "Missing access token")
        if appservice.is_as_token(self._hs, token):
            return appservice.authenticate(self._hs, request, token)
        session = self._hs.sessions.get(token)
        if session is None or token in self._hs.expired:
            return matrix_error(
                401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False
            )
        return session

    # -- appservice ------------------------------------------------------------------------

    def load_appservice(self, registration: AppserviceRegistration) -> None:
        """Load a registration, as ``app_service_config_files`` does (see ``appservice``)."""
        appservice.load(self._hs, appservice.FakeAppservice.from_registration(registration))

    def close_registration(self) -> None:
        """``enable_registration: false``: only an appservice registers users."""
        self._hs.registration_open = False

    # -- faults ---------------------------------------------------------------------------

    def expire_token(self, token: str) -> None:
        """From now on ``token`` answers 401 M_UNKNOWN_TOKEN."""
        self._hs.expired.add(token)

    def deactivate_user(self, user_id: str) -> None:
        """What Synapse's admin API does: tokens gone, every room left, every login refused
        (403 M_FORBIDDEN, as for a wrong password); the user id stays taken."""
        for room_id in self._hs.joined_rooms_of(user_id):
            self._hs.set_membership(self._hs.rooms[room_id], user_id, "leave", user_id)
        self._hs.drop_all_tokens(user_id)
        self._hs.users[user_id].deactivated = True

    def make_server_admin(self, user_id: str) -> None:
        """Let the user call the admin API (``/_synapse/admin``)."""
        self._hs.users[user_id].server_admin = True

    def change_password(self, user_id: str, password: str) -> None:
        """A password reset by the server's admin, which logs the user out everywhere."""
        self._hs.users[user_id].password = password
        self._hs.drop_all_tokens(user_id)

    # -- test conveniences (no HTTP, not counted) ----------------------------------------

    def register_user(self, localpart: str, password: str) -> str:
        """Create a user directly; raises ``ValueError`` if the localpart is invalid or taken."""
        problem = self._hs.check_localpart(localpart)
        if problem is not None:
            raise ValueError(f"cannot register {localpart!r}: {problem.json}")
        return self._hs.create_user(localpart, password).user_id

    def user_token(self, user_id: str) -> str:
        """Issue an access token for ``user_id`` without counting a login or a device."""
        return self._hs.open_session(user_id, count_device=False).token

    def user_ids(self) -> list[str]:
        return list(self._hs.users)

    def has_user(self, user_id: str) -> bool:
        return user_id in self._hs.users

    def password(self, user_id: str) -> str:
        return self._hs.users[user_id].password

    def devices(self, user_id: str) -> list[str]:
        """Ids of the user's devices, oldest first (each registration or login adds one)."""
        return list(self._hs.users[user_id].devices)

    def displayname(self, user_id: str) -> str | None:
        user = self._hs.users.get(user_id)
        return None if user is None else user.displayname

    def create_room(self, creator: str, body: Mapping[str, Any] | None = None) -> str:
        """Create a room as ``creator`` with a ``createRoom`` body; returns the room id."""
        problem = rooms.check_create_body(self._hs, body or {})
        if problem is not None:
            raise ValueError(f"invalid createRoom body: {problem.json}")
        return rooms.build_room(self._hs, creator, body or {}).room_id

    def room(self, room_id: str) -> Room:
        """The live room record (raises ``KeyError`` for an unknown or deleted room)."""
        return self._hs.rooms[room_id]

    def room_ids(self) -> list[str]:
        return list(self._hs.rooms)

    def rooms_of(self, user_id: str) -> list[str]:
        """Ids of the rooms ``user_id`` is joined to."""
        return self._hs.joined_rooms_of(user_id)

    def state(self, room_id: str, event_type: str, state_key: str = "") -> JsonDict | None:
        """A copy of the content of a current state event, or ``None``."""
        content = self.room(room_id).content(event_type, state_key)
        return None if content is None else copy.deepcopy(content)

    def set_state(
        self,
        room_id: str,
        event_type: str,
        content: JsonDict,
        state_key: str = "",
        sender: str = "",
    ) -> str:
        """Write a state event directly (no permission check); returns the event id."""
        room = self.room(room_id)
        event = self._hs.set_state(room, event_type, state_key, content, sender or room.creator)
        return event.event_id

    def members(self, room_id: str) -> dict[str, str]:
        """user id -> membership ("join", "invite", "leave")."""
        return dict(self.room(room_id).members)

    def messages(self, room_id: str) -> list[Message]:
        """The room's timeline, oldest first: each item has ``sender``, ``body``, ``event_id``."""
        return room_messages(self.room(room_id))

    def state_events(self, room_id: str, event_type: str | None = None) -> list[StateEntry]:
        """The room's current state events, all or those of ``event_type``."""
        return room_state(self.room(room_id), event_type)

    def force_join(self, room_id: str, user_id: str) -> None:
        self._hs.set_membership(self.room(room_id), user_id, "join", user_id)

    def force_leave(self, room_id: str, user_id: str) -> None:
        self._hs.set_membership(self.room(room_id), user_id, "leave", user_id)

    def delete_room(self, room_id: str) -> None:
        """The room vanishes, its members made to leave; later requests get 403 or 404."""
        self._hs.forget_room(room_id)
        for alias in [a for a, target in self._hs.aliases.items() if target == room_id]:
            del self._hs.aliases[alias]
