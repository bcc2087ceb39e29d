"""Matrix request builders: plain values, no I/O."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.http import ApiCall
from app.matrix import api
from app.matrix.api import segment

V3 = "/_matrix/client/v3"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("100%", "100%25"),
        ("!room:localhost", "%21room%3Alocalhost"),
        ("@bot:localhost", "%40bot%3Alocalhost"),
        ("héllo", "h%C3%A9llo"),
        ("a b", "a%20b"),
        ("plain-id_1.2~x", "plain-id_1.2~x"),
        ("", ""),
    ],
)
def test_segment_percent_encodes(raw: str, encoded: str) -> None:
    assert segment(raw) == encoded


@given(st.text())
def test_segment_round_trips_and_never_splits_the_path(value: str) -> None:
    encoded = segment(value)
    assert unquote(encoded) == value
    assert not {"/", "?", "#"} & set(encoded)


def test_login_password_body_and_flags() -> None:
    call = api.login_password("bot", "s3cret", device_name="sync")
    assert (call.method, call.path) == ("POST", f"{V3}/login")
    assert call.body == {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "bot"},
        "password": "s3cret",
        "initial_device_display_name": "sync",
    }
    assert call.idempotent is False
    assert call.authenticated is False


def test_login_password_without_device_name_omits_it() -> None:
    assert "initial_device_display_name" not in api.login_password("bot", "pw").body


def test_register_dummy() -> None:
    call = api.register_dummy("agent_1", "pw", device_name="dev")
    assert (call.method, call.path, call.authenticated) == ("POST", f"{V3}/register", False)
    assert call.body == {
        "username": "agent_1",
        "password": "pw",
        "auth": {"type": "m.login.dummy"},
        "initial_device_display_name": "dev",
    }


def test_register_available_puts_username_in_query() -> None:
    call = api.register_available("agent/1")
    assert (call.method, call.path) == ("GET", f"{V3}/register/available")
    assert call.query == {"username": "agent/1"}
    assert call.authenticated is False


def test_whoami_and_joined_rooms() -> None:
    assert (api.whoami().method, api.whoami().path) == ("GET", f"{V3}/account/whoami")
    assert (api.joined_rooms().method, api.joined_rooms().path) == ("GET", f"{V3}/joined_rooms")


def test_create_room_keeps_only_given_options_and_is_not_idempotent() -> None:
    call = api.create_room(name="Agent", preset="private_chat", invite=["@a:localhost"])
    assert (call.method, call.path) == ("POST", f"{V3}/createRoom")
    assert call.body == {"name": "Agent", "preset": "private_chat", "invite": ["@a:localhost"]}
    assert call.idempotent is False
    assert api.create_room().body == {}


def test_create_room_all_options() -> None:
    state = [{"type": "m.space.parent", "state_key": "!s", "content": {}}]
    call = api.create_room(
        name="n",
        topic="t",
        preset="public_chat",
        visibility="private",
        invite=["@x:y"],
        initial_state=state,
        creation_content={"type": "m.space"},
        power_level_content_override={"users_default": 0},
    )
    assert call.body == {
        "name": "n",
        "topic": "t",
        "preset": "public_chat",
        "visibility": "private",
        "invite": ["@x:y"],
        "initial_state": state,
        "creation_content": {"type": "m.space"},
        "power_level_content_override": {"users_default": 0},
    }


def test_get_state_with_server_less_room_id() -> None:
    call = api.get_state("!UkK-0bzABC")
    assert (call.method, call.path) == ("GET", f"{V3}/rooms/%21UkK-0bzABC/state")


def test_get_state_event_with_empty_state_key_has_trailing_slash() -> None:
    call = api.get_state_event("!r:localhost", "m.room.name")
    assert call.method == "GET"
    assert call.path == f"{V3}/rooms/%21r%3Alocalhost/state/m.room.name/"


def test_get_state_event_encodes_state_key() -> None:
    call = api.get_state_event("!r", "m.space.child", "!child:localhost")
    assert call.path == f"{V3}/rooms/%21r/state/m.space.child/%21child%3Alocalhost"


def test_put_state_event() -> None:
    content = {"via": ["localhost"]}
    call = api.put_state_event("!s", "m.space.child", content, "!c")
    assert (call.method, call.path, call.body) == (
        "PUT",
        f"{V3}/rooms/%21s/state/m.space.child/%21c",
        content,
    )
    assert api.put_state_event("!s", "m.room.name", {"name": "x"}).path.endswith("m.room.name/")


def test_join_invite_leave() -> None:
    join = api.join("!r/x")
    assert (join.method, join.path, join.body) == ("POST", f"{V3}/rooms/%21r%2Fx/join", {})
    invite = api.invite("!r", "@u:localhost")
    assert (invite.method, invite.path) == ("POST", f"{V3}/rooms/%21r/invite")
    assert invite.body == {"user_id": "@u:localhost"}
    leave = api.leave("!r")
    assert (leave.method, leave.path, leave.body) == ("POST", f"{V3}/rooms/%21r/leave", {})


def test_joined_members() -> None:
    call = api.joined_members("!r:localhost")
    assert (call.method, call.path) == ("GET", f"{V3}/rooms/%21r%3Alocalhost/joined_members")


def test_profile_displayname() -> None:
    put = api.set_displayname("@agent-1:localhost", "Ägent")
    assert (put.method, put.path) == ("PUT", f"{V3}/profile/%40agent-1%3Alocalhost/displayname")
    assert put.body == {"displayname": "Ägent"}
    get = api.get_displayname("@a:localhost")
    assert (get.method, get.path) == ("GET", f"{V3}/profile/%40a%3Alocalhost/displayname")


def test_send_event_encodes_txn_id() -> None:
    call = api.send_event("!r", "m.room.message", "txn/1?#", {"body": "hi"})
    assert call.method == "PUT"
    assert call.path == f"{V3}/rooms/%21r/send/m.room.message/txn%2F1%3F%23"
    assert call.body == {"body": "hi"}
    assert call.idempotent is True


def test_space_hierarchy_query() -> None:
    call = api.space_hierarchy("!space:localhost")
    assert (call.method, call.path) == (
        "GET",
        "/_matrix/client/v1/rooms/%21space%3Alocalhost/hierarchy",
    )
    assert call.query == {"max_depth": "1"}
    paged = api.space_hierarchy("!s", limit=50, from_token="tok", max_depth=2)
    assert paged.query == {"max_depth": "2", "limit": "50", "from": "tok"}


@pytest.mark.parametrize(
    "call",
    [api.login_password("bot", "hunter2-secret"), api.register_dummy("bot", "hunter2-secret")],
)
def test_api_call_repr_hides_password(call: ApiCall) -> None:
    assert "hunter2-secret" not in repr(call)
