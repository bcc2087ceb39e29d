"""Request builders for the Matrix client-server API.

Each function returns an `ApiCall` and does no I/O. Every id placed in a path goes through
`segment`, so room ids, user ids, event types, state keys and transaction ids are always
percent-encoded, whatever characters an untrusted agent id or name brings.
"""

from __future__ import annotations

from typing import Any

from app.http.calls import ApiCall
from app.http.paths import segment

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def path(prefix: str, *parts: str) -> str:
    return prefix + "".join("/" + segment(part) for part in parts)


def login_password(user: str, password: str, device_name: str | None = None) -> ApiCall:
    body: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    if device_name:
        body["initial_device_display_name"] = device_name
    return ApiCall("POST", f"{V3}/login", body, idempotent=False, authenticated=False)


def register_dummy(localpart: str, password: str, device_name: str | None = None) -> ApiCall:
    body: dict[str, Any] = {
        "username": localpart,
        "password": password,
        "auth": {"type": "m.login.dummy"},
    }
    if device_name:
        body["initial_device_display_name"] = device_name
    # Repeating a register is harmless: the second attempt answers M_USER_IN_USE.
    return ApiCall("POST", f"{V3}/register", body, authenticated=False)


def register_available(localpart: str) -> ApiCall:
    return ApiCall(
        "GET", f"{V3}/register/available", query={"username": localpart}, authenticated=False
    )


def versions() -> ApiCall:
    return ApiCall("GET", "/_matrix/client/versions", authenticated=False)


def whoami() -> ApiCall:
    return ApiCall("GET", f"{V3}/account/whoami")


def server_keys() -> ApiCall:
    """The federation signing keys, which name the server; Synapse serves them on listeners
    with the `federation` (or `keys`) resource, as its generated config has it."""
    return ApiCall("GET", "/_matrix/key/v2/server", authenticated=False)


def admin_user(user_id: str) -> ApiCall:
    """Synapse's admin API view of an account (server admins only)."""
    return ApiCall("GET", path("/_synapse/admin/v2", "users", user_id))


def create_room(
    *,
    name: str | None = None,
    topic: str | None = None,
    preset: str | None = None,
    visibility: str | None = None,
    invite: list[str] | None = None,
    initial_state: list[dict[str, Any]] | None = None,
    creation_content: dict[str, Any] | None = None,
    power_level_content_override: dict[str, Any] | None = None,
) -> ApiCall:
    fields = {
        "name": name,
        "topic": topic,
        "preset": preset,
        "visibility": visibility,
        "invite": invite,
        "initial_state": initial_state,
        "creation_content": creation_content,
        "power_level_content_override": power_level_content_override,
    }
    body = {key: value for key, value in fields.items() if value is not None}
    # Not idempotent: a repeated createRoom makes a second room.
    return ApiCall("POST", f"{V3}/createRoom", body, idempotent=False)


def get_state(room_id: str) -> ApiCall:
    return ApiCall("GET", path(V3, "rooms", room_id, "state"))


def get_state_event(room_id: str, event_type: str, state_key: str = "") -> ApiCall:
    return ApiCall("GET", path(V3, "rooms", room_id, "state", event_type, state_key))


def put_state_event(
    room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
) -> ApiCall:
    return ApiCall("PUT", path(V3, "rooms", room_id, "state", event_type, state_key), content)


def join(room_id: str) -> ApiCall:
    return ApiCall("POST", path(V3, "rooms", room_id, "join"), {})


def invite(room_id: str, user_id: str) -> ApiCall:
    return ApiCall("POST", path(V3, "rooms", room_id, "invite"), {"user_id": user_id})


def leave(room_id: str) -> ApiCall:
    return ApiCall("POST", path(V3, "rooms", room_id, "leave"), {})


def joined_rooms() -> ApiCall:
    return ApiCall("GET", f"{V3}/joined_rooms")


def joined_members(room_id: str) -> ApiCall:
    return ApiCall("GET", path(V3, "rooms", room_id, "joined_members"))


def set_displayname(user_id: str, displayname: str) -> ApiCall:
    return ApiCall("PUT", path(V3, "profile", user_id, "displayname"), {"displayname": displayname})


def get_displayname(user_id: str) -> ApiCall:
    return ApiCall("GET", path(V3, "profile", user_id, "displayname"))


def send_event(room_id: str, event_type: str, txn_id: str, content: dict[str, Any]) -> ApiCall:
    # The transaction id makes a repeated send deliver the event once.
    return ApiCall("PUT", path(V3, "rooms", room_id, "send", event_type, txn_id), content)


def room_messages(room_id: str, *, limit: int, from_token: str | None = None) -> ApiCall:
    """Room events, newest first (`dir=b`); `from_token` continues where a page ended."""
    query = {"dir": "b", "limit": str(limit)}
    if from_token is not None:
        query["from"] = from_token
    return ApiCall("GET", path(V3, "rooms", room_id, "messages"), query=query)


def space_hierarchy(
    space_id: str, *, limit: int | None = None, from_token: str | None = None, max_depth: int = 1
) -> ApiCall:
    query = {"max_depth": str(max_depth)}
    if limit is not None:
        query["limit"] = str(limit)
    if from_token is not None:
        query["from"] = from_token
    return ApiCall("GET", path(V1, "rooms", space_id, "hierarchy"), query=query)


def unban(room_id: str, user_id: str) -> ApiCall:
    return ApiCall("POST", path(V3, "rooms", room_id, "unban"), {"user_id": user_id})


def sync(*, filter_json: str, since: str | None = None, timeout_ms: int = 0) -> ApiCall:
    """One `/sync`: the changes since `since`, or, without it, the whole filtered state of
    every joined room (which a homeserver answers at once, whatever `timeout_ms`)."""
    # Reading state is not being there: the account is not shown online for it.
    query = {"filter": filter_json, "timeout": str(timeout_ms), "set_presence": "offline"}
    if since is not None:
        query["since"] = since
    return ApiCall("GET", f"{V3}/sync", query=query)
