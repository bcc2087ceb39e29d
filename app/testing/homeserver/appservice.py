"""The application-service API of the fake homeserver, as Synapse (1.163) answers it:

- the ``as_token`` authenticates as the registration's sender, or, with ``?user_id=``, as a
  user the namespace covers (403 ``M_FORBIDDEN`` outside it, or for a user not registered);
- ``POST /register`` with ``{"type": "m.login.application_service", "username": ...}`` and
  the ``as_token`` makes a user of the namespace (400 ``M_EXCLUSIVE`` outside it, 400
  ``M_USER_IN_USE`` when taken, 401 ``M_UNKNOWN_TOKEN`` for another token); with
  ``inhibit_login`` no device and no token, and it works with registration closed;
- a normal registration of a name in an exclusive namespace is 400 ``M_EXCLUSIVE``;
- the sender user exists as soon as the registration is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.identity.registration import AppserviceRegistration
from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.homeserver.model import Call, HomeserverState, Session, matrix_error, ok

APPSERVICE_LOGIN = "m.login.application_service"


@dataclass(frozen=True)
class FakeAppservice:
    """A loaded registration: its token, sender and user namespaces (regex, exclusive)."""

    as_token: str
    sender_localpart: str
    users: tuple[tuple[str, bool], ...]

    @classmethod
    def from_registration(cls, registration: AppserviceRegistration) -> FakeAppservice:
        users = tuple((ns.regex, ns.exclusive) for ns in registration.users)
        return cls(registration.as_token, registration.sender_localpart, users)

    def __repr__(self) -> str:
        return f"FakeAppservice(sender_localpart={self.sender_localpart!r})"

    def interested_in(self, user_id: str) -> bool:
        return any(re.match(regex, user_id) for regex, _ in self.users)

    def reserves(self, user_id: str) -> bool:
        """Whether an exclusive namespace keeps ``user_id`` from everyone else."""
        return any(exclusive and re.match(regex, user_id) for regex, exclusive in self.users)


def load(hs: HomeserverState, appservice: FakeAppservice) -> None:
    hs.appservice = appservice
    sender = hs.user_id_for(appservice.sender_localpart)
    if sender not in hs.users:
        hs.create_user(appservice.sender_localpart, "")


def authenticate(hs: HomeserverState, request: FakeRequest, token: str) -> Session | FakeResponse:
    """The session of an ``as_token`` request: the sender, or the asserted ``user_id``."""
    appservice = hs.appservice
    assert appservice is not None
    sender = hs.user_id_for(appservice.sender_localpart)
    user_id = request.query.get("user_id") or sender
    if user_id != sender:
        if not appservice.interested_in(user_id):
            message = f"Application service cannot masquerade as this user ({user_id})."
            return matrix_error(403, "M_FORBIDDEN", message)
        if user_id not in hs.users:
            message = f"Application service has not registered this user ({user_id})"
            return matrix_error(403, "M_FORBIDDEN", message)
    # No device: an appservice acts without one.
    return Session(token, user_id, "")


def is_as_token(hs: HomeserverState, token: str | None) -> bool:
    return hs.appservice is not None and token is not None and token == hs.appservice.as_token


def register(hs: HomeserverState, call: Call) -> FakeResponse:
    """``POST /register`` of type ``m.login.application_service``."""
    token = call.request.bearer_token() or call.request.query.get("access_token")
    if not token:
        message = "Appservice token must be provided when using a type of " + APPSERVICE_LOGIN
        return matrix_error(400, "M_UNKNOWN", message)
    if not is_as_token(hs, token):
        return matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
    assert hs.appservice is not None
    username = call.body().get("username")
    if not isinstance(username, str) or not username:
        return matrix_error(400, "M_UNKNOWN", "Desired Username is missing or not a string")
    user_id = hs.user_id_for(username)
    if not hs.appservice.interested_in(user_id):
        message = "Invalid user localpart for this application service."
        return matrix_error(400, "M_EXCLUSIVE", message)
    if user_id in hs.users:
        return matrix_error(400, "M_USER_IN_USE", "User ID already taken.")
    user = hs.create_user(username, "")
    if call.body().get("inhibit_login") is True:
        return ok({"user_id": user.user_id, "home_server": hs.server_name})
    session = hs.open_session(user.user_id)
    return ok(
        {
            "user_id": user.user_id,
            "access_token": session.token,
            "device_id": session.device_id,
            "home_server": hs.server_name,
        }
    )
