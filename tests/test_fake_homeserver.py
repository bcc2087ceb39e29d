"""Tests of the fake homeserver itself: its core (``handle``) and its respx adapter."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from app.testing.fake_http import FakeResponse
from app.testing.homeserver import FakeHomeserver

from helpers import req

pytestmark = pytest.mark.anyio

V3 = "/_matrix/client/v3"


@pytest.fixture
def hs() -> FakeHomeserver:
    return FakeHomeserver(seed=1)


def new_user(hs: FakeHomeserver, name: str) -> tuple[str, str]:
    user_id = hs.register_user(name, "pw")
    return user_id, hs.user_token(user_id)


def test_versions_need_no_token(hs: FakeHomeserver) -> None:
    assert req(hs, "GET", "/_matrix/client/versions").json == {"versions": ["v1.11"]}


def test_register_answers_uia_then_token_then_user_in_use(hs: FakeHomeserver) -> None:
    body = {"username": "bot", "password": "pw"}
    first = req(hs, "POST", f"{V3}/register", json=body)
    assert first.status == 401 and first.json["flows"] == [{"stages": ["m.login.dummy"]}]
    assert "session" in first.json
    done = req(hs, "POST", f"{V3}/register", json={**body, "auth": {"type": "m.login.dummy"}})
    assert done.status == 200 and done.json["user_id"] == "@bot:localhost"
    who = req(hs, "GET", f"{V3}/account/whoami", token=done.json["access_token"])
    assert who.json["user_id"] == "@bot:localhost"
    assert who.json["device_id"] == done.json["device_id"]
    again = req(hs, "POST", f"{V3}/register", json={**body, "auth": {"type": "m.login.dummy"}})
    assert (again.status, again.json["errcode"]) == (400, "M_USER_IN_USE")
    assert hs.devices_created == 1 and hs.logins == 0


@pytest.mark.parametrize(
    ("name", "status", "errcode"),
    [
        ("free", 200, None),
        ("taken", 400, "M_USER_IN_USE"),
        ("bad name!", 400, "M_INVALID_USERNAME"),
        ("_hidden", 400, "M_INVALID_USERNAME"),
    ],
)
def test_register_available(
    hs: FakeHomeserver, name: str, status: int, errcode: str | None
) -> None:
    hs.register_user("taken", "pw")
    answer = req(hs, "GET", f"{V3}/register/available", query={"username": name})
    assert answer.status == status
    assert answer.json.get("errcode") == errcode
    if status == 200:
        assert answer.json == {"available": True}


def test_login_creates_a_device_each_time_and_hides_unknown_users(hs: FakeHomeserver) -> None:
    hs.register_user("alice", "secret")
    modern = {"type": "m.login.password", "password": "secret"}
    one = req(
        hs,
        "POST",
        f"{V3}/login",
        json={**modern, "identifier": {"type": "m.id.user", "user": "alice"}},
    )
    two = req(hs, "POST", f"{V3}/login", json={**modern, "user": "@alice:localhost"})
    assert one.status == two.status == 200
    assert one.json["device_id"] != two.json["device_id"]
    assert (hs.logins, hs.devices_created) == (2, 2)
    assert len(hs.devices("@alice:localhost")) == 2
    wrong = req(hs, "POST", f"{V3}/login", json={**modern, "user": "alice", "password": "x"})
    ghost = req(hs, "POST", f"{V3}/login", json={**modern, "user": "ghost"})
    assert wrong.status == ghost.status == 403
    assert (
        wrong.json
        == ghost.json
        == {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}
    )
    assert hs.logins == 2


def login_as(hs: FakeHomeserver, user: str, password: str) -> FakeResponse:
    body = {"type": "m.login.password", "user": user, "password": password}
    return req(hs, "POST", f"{V3}/login", json=body)


def test_a_deactivated_user_is_refused_like_a_wrong_password(hs: FakeHomeserver) -> None:
    user_id, token = new_user(hs, "gone")
    inspector, inspector_token = new_user(hs, "inspector")

    hs.deactivate_user(user_id)

    old_token = req(hs, "GET", f"{V3}/account/whoami", token=token)
    assert (old_token.status, old_token.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    login = login_as(hs, "gone", "pw")  # the right password
    assert (login.status, login.json["errcode"]) == (403, "M_FORBIDDEN")
    taken = req(hs, "GET", f"{V3}/register/available", query={"username": "gone"})
    assert taken.json["errcode"] == "M_USER_IN_USE"
    account = f"/_synapse/admin/v2/users/{user_id}"
    refused = req(hs, "GET", account, token=inspector_token)
    assert (refused.status, refused.json["error"]) == (403, "You are not a server admin")
    hs.make_server_admin(inspector)
    assert req(hs, "GET", account, token=inspector_token).json["deactivated"] is True


def test_a_password_reset_logs_the_user_out(hs: FakeHomeserver) -> None:
    user_id, token = new_user(hs, "alice")

    hs.change_password(user_id, "new-pw")

    assert req(hs, "GET", f"{V3}/account/whoami", token=token).status == 401
    assert login_as(hs, "alice", "pw").status == 403
    assert login_as(hs, "alice", "new-pw").status == 200


def test_server_keys_name_the_server(hs: FakeHomeserver) -> None:
    assert req(hs, "GET", "/_matrix/key/v2/server").json["server_name"] == "localhost"


def test_missing_unknown_and_expired_tokens(hs: FakeHomeserver) -> None:
    _, token = new_user(hs, "alice")
    assert req(hs, "GET", f"{V3}/joined_rooms").json["errcode"] == "M_MISSING_TOKEN"
    assert req(hs, "GET", f"{V3}/joined_rooms", token="nope").json["errcode"] == "M_UNKNOWN_TOKEN"
    assert req(hs, "GET", f"{V3}/joined_rooms", token=token).status == 200
    hs.expire_token(token)
    expired = req(hs, "GET", f"{V3}/joined_rooms", token=token)
    assert (expired.status, expired.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_create_room_builds_state(hs: FakeHomeserver) -> None:
    alice, token = new_user(hs, "alice")
    bob, _ = new_user(hs, "bob")
    body = {
        "name": "Agent",
        "topic": "t",
        "preset": "private_chat",
        "invite": [bob],
        "creation_content": {"type": "m.space"},
        "initial_state": [{"type": "m.space.parent", "state_key": "!p", "content": {"via": ["x"]}}],
        "power_level_content_override": {"users": {bob: 50}, "state_default": 60},
    }
    answer = req(hs, "POST", f"{V3}/createRoom", token=token, json=body)
    room_id = answer.json["room_id"]
    assert room_id.startswith("!") and len(room_id) == 44 and ":" not in room_id
    assert hs.state(room_id, "m.room.name") == {"name": "Agent"}
    assert hs.state(room_id, "m.room.topic") == {"topic": "t"}
    assert hs.state(room_id, "m.room.join_rules") == {"join_rule": "invite"}
    assert hs.state(room_id, "m.room.create") == {"type": "m.space", "room_version": "12"}
    assert hs.state(room_id, "m.space.parent", "!p") == {"via": ["x"]}
    levels = hs.state(room_id, "m.room.power_levels")
    assert levels is not None
    # Room version 12: the creator outranks everyone and is never listed.
    assert levels["users"] == {bob: 50} and levels["state_default"] == 60
    assert levels["events"]["m.room.name"] == 50
    assert hs.members(room_id) == {alice: "join", bob: "invite"}
    assert hs.rooms_of(alice) == [room_id] and hs.rooms_of(bob) == []


def test_state_is_403_for_missing_rooms_and_non_members(hs: FakeHomeserver) -> None:
    alice, token = new_user(hs, "alice")
    _, other = new_user(hs, "eve")
    room_id = hs.create_room(alice, {"name": "R"})
    events = req(hs, "GET", f"{V3}/rooms/{room_id}/state", token=token).json
    name_event = next(e for e in events if e["type"] == "m.room.name")
    assert (name_event["state_key"], name_event["content"]) == ("", {"name": "R"})
    assert name_event["room_id"] == room_id and name_event["sender"] == alice
    for path in (
        f"/rooms/{room_id}/state",
        f"/rooms/{room_id}/state/m.room.name/",
        "/rooms/!missing/state",
        "/rooms/!missing/state/m.room.name",
    ):
        answer = req(hs, "GET", V3 + path, token=other)
        assert (answer.status, answer.json["errcode"]) == (403, "M_FORBIDDEN")
    hs.delete_room(room_id)
    assert req(hs, "GET", f"{V3}/rooms/{room_id}/state", token=token).status == 403


def test_state_event_keys(hs: FakeHomeserver) -> None:
    alice, token = new_user(hs, "alice")
    room_id = hs.create_room(alice, {"name": "R"})
    for suffix in ("m.room.name", "m.room.name/"):
        answer = req(hs, "GET", f"{V3}/rooms/{room_id}/state/{suffix}", token=token)
        assert answer.json == {"name": "R"}
    put = req(hs, "PUT", f"{V3}/rooms/{room_id}/state/m.x/a/b", token=token, json={"k": 1})
    assert put.status == 200 and put.json["event_id"].startswith("$")
    assert req(hs, "GET", f"{V3}/rooms/{room_id}/state/m.x/a/b", token=token).json == {"k": 1}
    missing = req(hs, "GET", f"{V3}/rooms/{room_id}/state/m.room.topic", token=token)
    assert (missing.status, missing.json["errcode"]) == (404, "M_NOT_FOUND")


def test_put_state_needs_power_and_dedupes(hs: FakeHomeserver) -> None:
    alice, token = new_user(hs, "alice")
    bob, bob_token = new_user(hs, "bob")
    room_id = hs.create_room(alice, {"invite": [bob]})
    path = f"{V3}/rooms/{room_id}/state/m.room.name/"
    assert req(hs, "PUT", path, token=bob_token, json={"name": "x"}).status == 403
    hs.force_join(room_id, bob)
    denied = req(hs, "PUT", path, token=bob_token, json={"name": "x"})
    assert (denied.status, denied.json["errcode"]) == (403, "M_FORBIDDEN")
    first = req(hs, "PUT", path, token=token, json={"name": "x"})
    same = req(hs, "PUT", path, token=token, json={"name": "x"})
    assert first.json == same.json
    assert hs.state(room_id, "m.room.name") == {"name": "x"}


def test_send_is_idempotent_per_transaction(hs: FakeHomeserver) -> None:
    alice, token = new_user(hs, "alice")
    room_id = hs.create_room(alice)
    msg = {"msgtype": "m.text", "body": "hi"}
    one = req(hs, "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/t1", token=token, json=msg)
    two = req(hs, "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/t1", token=token, json=msg)
    three = req(hs, "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/t2", token=token, json=msg)
    assert one.json == two.json != three.json
    timeline = hs.room(room_id).timeline
    assert [(e.txn_id, e.content["body"], e.sender) for e in timeline] == [
        ("t1", "hi", alice),
        ("t2", "hi", alice),
    ]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=12))
def test_timeline_holds_one_event_per_distinct_txn(txns: list[str]) -> None:
    hs = FakeHomeserver(seed=2)
    alice, token = new_user(hs, "alice")
    room_id = hs.create_room(alice)
    for txn in txns:
        path = f"{V3}/rooms/{room_id}/send/m.room.message/{txn}"
        assert req(hs, "PUT", path, token=token, json={"body": txn}).status == 200
    assert [e.txn_id for e in hs.room(room_id).timeline] == list(dict.fromkeys(txns))


def test_join_invite_and_leave(hs: FakeHomeserver) -> None:
    alice, token = new_user(hs, "alice")
    bob, bob_token = new_user(hs, "bob")
    room_id = hs.create_room(alice, {"room_alias_name": "agents"})
    assert req(hs, "POST", f"{V3}/join/{room_id}", token=bob_token).status == 403
    assert req(hs, "POST", f"{V3}/join/!nope", token=bob_token).json["errcode"] == "M_NOT_FOUND"
    invite = f"{V3}/rooms/{room_id}/invite"
    assert req(hs, "POST", invite, token=token, json={"user_id": bob}).json == {}
    assert req(hs, "POST", invite, token=token, json={"user_id": bob}).status == 200
    joined = req(hs, "POST", "/_matrix/client/v3/join/#agents:localhost", token=bob_token)
    assert joined.json == {"room_id": room_id}
    again = req(hs, "POST", f"{V3}/rooms/{room_id}/join", token=bob_token)
    assert again.json == {"room_id": room_id}
    in_room = req(hs, "POST", invite, token=token, json={"user_id": bob})
    assert in_room.status == 403 and "is already in the room" in in_room.json["error"]
    members = req(hs, "GET", f"{V3}/rooms/{room_id}/joined_members", token=token).json
    assert members == {
        "joined": {
            alice: {"display_name": "alice", "avatar_url": None},
            bob: {"display_name": "bob", "avatar_url": None},
        }
    }
    assert req(hs, "POST", f"{V3}/rooms/{room_id}/leave", token=bob_token).json == {}
    assert req(hs, "GET", f"{V3}/joined_rooms", token=bob_token).json == {"joined_rooms": []}
    assert req(hs, "GET", f"{V3}/joined_rooms", token=token).json == {"joined_rooms": [room_id]}


def test_public_rooms_can_be_joined_without_invite(hs: FakeHomeserver) -> None:
    alice, _ = new_user(hs, "alice")
    bob, bob_token = new_user(hs, "bob")
    room_id = hs.create_room(alice, {"preset": "public_chat"})
    assert req(hs, "POST", f"{V3}/rooms/{room_id}/join", token=bob_token).status == 200
    assert hs.members(room_id)[bob] == "join"


def test_displayname_only_by_its_owner(hs: FakeHomeserver) -> None:
    _, admin_token = new_user(hs, "admin")
    agent, agent_token = new_user(hs, "agent")
    path = f"{V3}/profile/{agent}/displayname"
    denied = req(hs, "PUT", path, token=admin_token, json={"displayname": "X"})
    assert denied.status == 403
    assert denied.json["error"] == "Cannot set another user's displayname"
    assert req(hs, "PUT", path, token=agent_token, json={"displayname": "Ada"}).json == {}
    assert req(hs, "GET", path).json == {"displayname": "Ada"}
    assert hs.displayname(agent) == "Ada"
    unknown = req(hs, "GET", f"{V3}/profile/@ghost:localhost/displayname")
    assert (unknown.status, unknown.json["errcode"]) == (404, "M_NOT_FOUND")


def make_space(hs: FakeHomeserver) -> tuple[str, str, str, list[str]]:
    alice, token = new_user(hs, "alice")
    space = hs.create_room(alice, {"name": "Space", "creation_content": {"type": "m.space"}})
    children = [hs.create_room(alice, {"name": f"c{i}"}) for i in range(3)]
    eve, _ = new_user(hs, "eve")
    hidden = hs.create_room(eve, {"name": "hidden"})
    unlinked = hs.create_room(alice, {"name": "unlinked"})
    for room_id in [*children, hidden]:
        hs.set_state(space, "m.space.child", {"via": ["localhost"]}, state_key=room_id)
    hs.set_state(space, "m.space.child", {}, state_key=unlinked)
    return alice, token, space, children


def test_hierarchy_lists_accessible_children(hs: FakeHomeserver) -> None:
    _, token, space, children = make_space(hs)
    answer = req(hs, "GET", f"/_matrix/client/v1/rooms/{space}/hierarchy", token=token)
    rooms = answer.json["rooms"]
    assert [r["room_id"] for r in rooms] == [space, *children]
    assert "next_batch" not in answer.json
    assert rooms[0]["room_type"] == "m.space" and rooms[0]["name"] == "Space"
    assert len(rooms[0]["children_state"]) == 4
    assert rooms[1]["name"] == "c0" and rooms[1]["num_joined_members"] == 1
    assert rooms[1]["join_rule"] == "invite" and rooms[1]["children_state"] == []


def test_hierarchy_pages_and_checks_access(hs: FakeHomeserver) -> None:
    _, token, space, children = make_space(hs)
    path = f"/_matrix/client/v1/rooms/{space}/hierarchy"
    seen: list[str] = []
    query = {"limit": "2"}
    while True:
        page = req(hs, "GET", path, token=token, query=query).json
        seen += [r["room_id"] for r in page["rooms"]]
        if "next_batch" not in page:
            break
        query = {"limit": "2", "from": page["next_batch"]}
    assert seen == [space, *children]
    bad = req(hs, "GET", path, token=token, query={"from": "bogus"})
    assert (bad.status, bad.json["errcode"]) == (400, "M_INVALID_PARAM")
    _, stranger = new_user(hs, "zed")
    assert req(hs, "GET", path, token=stranger).status == 403


def test_fail_next_queues_canned_answers(hs: FakeHomeserver) -> None:
    limited = {"errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": 10}
    hs.fail_next("versions", 429, limited, {"Retry-After": "1"}, times=2)
    first = req(hs, "GET", "/_matrix/client/versions")
    assert (first.status, first.json, first.headers) == (429, limited, {"Retry-After": "1"})
    assert req(hs, "GET", "/_matrix/client/versions").status == 429
    assert req(hs, "GET", "/_matrix/client/versions").status == 200
    assert hs.requests_by_kind["versions"] == 3
    with pytest.raises(ValueError, match="unknown endpoint kind"):
        hs.fail_next("nope", 500, {})


def test_unknown_endpoint_is_unrecognized(hs: FakeHomeserver) -> None:
    answer = req(hs, "GET", f"{V3}/nothing/here")
    assert (answer.status, answer.json["errcode"]) == (404, "M_UNRECOGNIZED")
    assert req(hs, "DELETE", f"{V3}/createRoom").status == 405


# -- through respx, on both anyio backends ----------------------------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def router(hs: FakeHomeserver) -> Iterator[respx.MockRouter]:
    mock_router = respx.MockRouter(using=None, assert_all_called=False)
    hs.mount(mock_router)
    with mock_router:
        yield mock_router


async def test_round_trip_through_respx(hs: FakeHomeserver, router: respx.MockRouter) -> None:
    transport = httpx.MockTransport(router.async_handler)
    async with httpx.AsyncClient(transport=transport, base_url=hs.base_url) as client:
        auth = {"type": "m.login.dummy"}
        reg = await client.post(
            f"{V3}/register", json={"username": "bot", "password": "pw", "auth": auth}
        )
        headers = {"Authorization": f"Bearer {reg.json()['access_token']}"}
        created = await client.post(f"{V3}/createRoom", json={"name": "N"}, headers=headers)
        room_id = created.json()["room_id"]
        quoted = httpx.URL(f"{V3}/rooms/%21{room_id[1:]}/state/m.room.name/")
        got = await client.get(quoted, headers=headers)
        missing = await client.get(f"{V3}/rooms/%21nope/state", headers=headers)
    assert got.json() == {"name": "N"}
    assert missing.status_code == 403
    assert router["get_state_event"].calls.last.request.url.raw_path.startswith(
        b"/_matrix/client/v3/rooms/%21"
    )
    assert router["createRoom"].call_count == 1
    assert hs.requests_by_kind == {
        "register": 1,
        "createRoom": 1,
        "get_state_event": 1,
        "get_state": 1,
    }
    assert len(hs.kinds) == 26 and all(kind in router.routes for kind in hs.kinds)
