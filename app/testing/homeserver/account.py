"""Account endpoints of the fake homeserver: versions, register, login, whoami, profile."""

from __future__ import annotations

from app.testing.fake_http import FakeResponse
from app.testing.homeserver import appservice
from app.testing.homeserver.model import (
    Call,
    HomeserverState,
    JsonDict,
    Session,
    matrix_error,
    ok,
)

_UIA_FLOWS = [{"stages": ["m.login.dummy"]}]


def versions(hs: HomeserverState, call: Call) -> FakeResponse:
    return ok({"versions": ["v1.11"]})


def _session_body(hs: HomeserverState, session: Session) -> JsonDict:
    return {
        "user_id": session.user_id,
        "access_token": session.token,
        "device_id": session.device_id,
        "home_server": hs.server_name,
    }


def _requested_localpart(hs: HomeserverState, body: JsonDict) -> str | FakeResponse:
    username = body.get("username")
    if username is None:
        number = len(hs.users) + 1
        while hs.user_id_for(str(number)) in hs.users:
            number += 1
        return str(number)
    if not isinstance(username, str):
        return matrix_error(400, "M_INVALID_USERNAME", "Invalid username")
    return username.lower()


def register(hs: HomeserverState, call: Call) -> FakeResponse:
    """``POST /register`` with the dummy auth stage; answers the UIA flows without ``auth``."""
    body = call.body()
    if body.get("type") == appservice.APPSERVICE_LOGIN:
        return appservice.register(hs, call)
    if call.request.bearer_token():
        message = "An access token should not be provided on requests to /register"
        return matrix_error(400, "M_UNKNOWN", message)
    if not hs.registration_open:
        return matrix_error(403, "M_FORBIDDEN", "Registration has been disabled")
    localpart = _requested_localpart(hs, body)
    if isinstance(localpart, FakeResponse):
        return localpart
    problem = hs.check_localpart(localpart)
    if problem is not None:
        return problem
    auth = body.get("auth")
    if auth is None:
        return FakeResponse(401, {"flows": _UIA_FLOWS, "params": {}, "session": hs.new_opaque()})
    if not isinstance(auth, dict) or auth.get("type") != "m.login.dummy":
        return matrix_error(400, "M_UNRECOGNIZED", "Unrecognized auth type")
    password = body.get("password")
    if not isinstance(password, str) or not password:
        return matrix_error(400, "M_MISSING_PARAM", "Missing param: password")
    user = hs.create_user(localpart, password)
    if body.get("inhibit_login") is True:
        return ok({"user_id": user.user_id, "home_server": hs.server_name})
    device_id = body.get("device_id")
    session = hs.open_session(user.user_id, device_id if isinstance(device_id, str) else None)
    return ok(_session_body(hs, session))


def register_available(hs: HomeserverState, call: Call) -> FakeResponse:
    if not hs.registration_open:
        return matrix_error(403, "M_FORBIDDEN", "Registration has been disabled")
    username = call.request.query.get("username")
    if not username:
        return matrix_error(400, "M_MISSING_PARAM", "Missing string query parameter: username")
    problem = hs.check_localpart(username.lower())
    return problem if problem is not None else ok({"available": True})


def _login_name(body: JsonDict) -> str | FakeResponse:
    identifier = body.get("identifier")
    if isinstance(identifier, dict):
        if identifier.get("type") != "m.id.user":
            return matrix_error(400, "M_UNKNOWN", "Unknown login identifier type")
        name = identifier.get("user")
    else:
        name = body.get("user")
    if not isinstance(name, str) or not name:
        return matrix_error(400, "M_MISSING_PARAM", "User identifier is missing 'user' key")
    return name


def login(hs: HomeserverState, call: Call) -> FakeResponse:
    """Password login; every success creates a new device (unless ``device_id`` is known)."""
    body = call.body()
    if body.get("type") != "m.login.password":
        return matrix_error(400, "M_UNKNOWN", "Unknown login type")
    name = _login_name(body)
    if isinstance(name, FakeResponse):
        return name
    user = hs.users.get(hs.user_id_for(name))
    # Deactivation clears the password hash, so Synapse (1.163) refuses every password with the
    # answer a wrong one gets; M_USER_DEACTIVATED only follows a password that matched.
    # Users an appservice registered have no password at all.
    if (
        user is None
        or user.deactivated
        or not user.password
        or body.get("password") != user.password
    ):
        return matrix_error(403, "M_FORBIDDEN", "Invalid username or password")
    hs.logins += 1
    device_id = body.get("device_id")
    session = hs.open_session(user.user_id, device_id if isinstance(device_id, str) else None)
    return ok(_session_body(hs, session))


def server_keys(hs: HomeserverState, call: Call) -> FakeResponse:
    """``GET /_matrix/key/v2/server``: the federation signing keys, which name the server."""
    return ok(
        {
            "server_name": hs.server_name,
            "valid_until_ts": hs.now() + 86_400_000,
            "verify_keys": {"ed25519:fake": {"key": "ZmFrZSBrZXk"}},
            "old_verify_keys": {},
        }
    )


def admin_user(hs: HomeserverState, call: Call) -> FakeResponse:
    """``GET /_synapse/admin/v2/users/{userId}``: a user's account, for server admins only."""
    if not hs.users[call.user_id].server_admin:
        return matrix_error(403, "M_FORBIDDEN", "You are not a server admin")
    user = hs.users.get(call.params["user_id"])
    if user is None:
        return matrix_error(404, "M_NOT_FOUND", "User not found")
    return ok(
        {
            "name": user.user_id,
            "displayname": user.displayname,
            "admin": user.server_admin,
            "deactivated": user.deactivated,
        }
    )


def whoami(hs: HomeserverState, call: Call) -> FakeResponse:
    assert call.session is not None
    return ok(
        {"user_id": call.session.user_id, "device_id": call.session.device_id, "is_guest": False}
    )


def set_displayname(hs: HomeserverState, call: Call) -> FakeResponse:
    """Only the user themself may set their display name (admins get 403 too)."""
    target = call.params["user_id"]
    if target != call.user_id:
        return matrix_error(403, "M_FORBIDDEN", "Cannot set another user's displayname")
    name = call.body().get("displayname")
    if not isinstance(name, str):
        return matrix_error(400, "M_BAD_JSON", "Missing key 'displayname'")
    hs.users[target].displayname = name
    for room_id in hs.joined_rooms_of(target):
        hs.set_membership(hs.rooms[room_id], target, "join", target)
    return ok()


def get_displayname(hs: HomeserverState, call: Call) -> FakeResponse:
    user = hs.users.get(call.params["user_id"])
    if user is None:
        return matrix_error(404, "M_NOT_FOUND", "Profile was not found")
    return ok({} if user.displayname is None else {"displayname": user.displayname})
