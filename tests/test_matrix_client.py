"""MatrixClient over HttpxTransport on respx routes: requests out, typed results and errors in."""

from __future__ import annotations

import string
from collections.abc import Iterator

import httpx
import pytest
import respx

from app.errors import (
    ConnectionFailed,
    MalformedResponse,
    MatrixError,
    MatrixForbidden,
    MatrixNotFound,
    MatrixRateLimited,
    MatrixServerError,
    MatrixUnknownToken,
    MatrixUserInUse,
    RequestTimeout,
)
from app.http.retry import NO_RETRY, RetryPolicy
from app.http.transport import Request
from app.matrix import Credentials, LoginResult, MatrixClient, StateEvent

from helpers import HOMESERVER, FakeClock, body_of, make_router, make_transport, matrix_error

pytestmark = pytest.mark.anyio

V3 = "/_matrix/client/v3"
BOT = "@bot:localhost"
TOKEN = "syt_secret_token_OLD"
NEW_TOKEN = "syt_secret_token_NEW"
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # Entered as a context: a route a test declares but never reaches fails at teardown.
    with make_router(HOMESERVER, assert_all_called=True) as mock_router:
        yield mock_router


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def connect(
    router: respx.MockRouter, clock: FakeClock, policy: RetryPolicy | None = None
) -> MatrixClient:
    return MatrixClient.connect(
        make_transport(router), HOMESERVER, policy=policy, pacing=clock.pacing()
    )


@pytest.fixture
def anon(router: respx.MockRouter, clock: FakeClock) -> MatrixClient:
    return connect(router, clock)


@pytest.fixture
def bot(anon: MatrixClient) -> MatrixClient:
    return anon.as_user(BOT, TOKEN)


def auth_of(request: httpx.Request) -> str | None:
    value: str | None = request.headers.get("Authorization")
    return value


# --- accounts -------------------------------------------------------------------------------


async def test_login_sends_password_without_token_and_adopts_result(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.post(f"{V3}/login").respond(
        200, json={"user_id": BOT, "access_token": NEW_TOKEN, "device_id": "DEV"}
    )
    result = await bot.login("bot", "pw")
    assert result == LoginResult(BOT, NEW_TOKEN, "DEV")
    assert (bot.user_id, bot.access_token) == (BOT, NEW_TOKEN)
    request = route.calls.last.request
    assert body_of(request) == {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "bot"},
        "password": "pw",
    }
    assert auth_of(request) is None


async def test_login_forbidden(router: respx.MockRouter, anon: MatrixClient) -> None:
    router.post(f"{V3}/login").mock(
        return_value=matrix_error(403, "M_FORBIDDEN", "Invalid username or password")
    )
    with pytest.raises(MatrixForbidden) as caught:
        await anon.login("bot", "wrong")
    assert (caught.value.status, caught.value.errcode) == (403, "M_FORBIDDEN")
    assert anon.access_token is None


async def test_register_returns_login_and_notifies_listener(
    router: respx.MockRouter, anon: MatrixClient
) -> None:
    heard: list[LoginResult] = []

    async def listener(result: LoginResult) -> None:
        heard.append(result)

    client = anon.as_user(None, None, on_login=listener)
    route = router.post(f"{V3}/register").respond(
        200, json={"user_id": "@agent:localhost", "access_token": "t-agent"}
    )
    result = await client.register("agent", "pw")
    assert result == LoginResult("@agent:localhost", "t-agent", None)
    assert heard == [result]
    assert client.access_token == "t-agent"
    assert body_of(route.calls.last.request) == {
        "username": "agent",
        "password": "pw",
        "auth": {"type": "m.login.dummy"},
    }


async def test_register_taken_name_raises_user_in_use(
    router: respx.MockRouter, anon: MatrixClient
) -> None:
    route = router.post(f"{V3}/register").mock(
        return_value=matrix_error(400, "M_USER_IN_USE", "User ID already taken.")
    )
    with pytest.raises(MatrixUserInUse) as caught:
        await anon.register("agent", "pw")
    assert (caught.value.status, caught.value.error) == (400, "User ID already taken.")
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200, json={"available": True}), True),
        (matrix_error(400, "M_USER_IN_USE", "taken"), False),
    ],
)
async def test_username_available(
    router: respx.MockRouter, bot: MatrixClient, response: httpx.Response, expected: bool
) -> None:
    route = router.get(f"{V3}/register/available").mock(return_value=response)
    assert await bot.username_available("agent_x") is expected
    request = route.calls.last.request
    assert request.url.params["username"] == "agent_x"
    assert auth_of(request) is None
    assert route.call_count == 1


async def test_whoami_sends_bearer_token(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.get(f"{V3}/account/whoami").respond(200, json={"user_id": BOT})
    assert await bot.whoami() == BOT
    assert auth_of(route.calls.last.request) == f"Bearer {TOKEN}"


# --- rooms and state ------------------------------------------------------------------------


async def test_create_room_with_all_options(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.post(f"{V3}/createRoom").respond(200, json={"room_id": "!new"})
    options = {
        "name": "Agent",
        "topic": "Talk to the agent",
        "preset": "private_chat",
        "visibility": "private",
        "invite": ["@admin:localhost"],
        "initial_state": [
            {"type": "m.space.parent", "state_key": "!space", "content": {"via": ["localhost"]}}
        ],
        "creation_content": {"m.federate": False},
        "power_level_content_override": {"users": {BOT: 100}},
    }
    assert await bot.create_room(**options) == "!new"
    request = route.calls.last.request
    assert request.method == "POST"
    assert body_of(request) == options
    assert auth_of(request) == f"Bearer {TOKEN}"


async def test_get_state_parses_events_and_skips_junk(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    events = [
        {"type": "m.room.name", "state_key": "", "content": {"name": "A"}, "sender": BOT},
        {"type": "m.space.child", "state_key": "!c", "content": "not a dict"},
        {"type": "m.room.topic"},
        "junk",
    ]
    route = router.get(path=f"{V3}/rooms/!UkK-0bzABC/state").respond(200, json=events)
    state = await bot.get_state("!UkK-0bzABC")
    assert state == [
        StateEvent("m.room.name", "", {"name": "A"}, BOT),
        StateEvent("m.space.child", "!c", {}, None),
    ]
    assert route.calls.last.request.url.raw_path == b"/_matrix/client/v3/rooms/%21UkK-0bzABC/state"


async def test_get_state_not_a_list_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=f"{V3}/rooms/!r/state").respond(200, json={"oops": True})
    with pytest.raises(MalformedResponse):
        await bot.get_state("!r")


async def test_get_state_of_unknown_room_is_forbidden(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=f"{V3}/rooms/!gone/state").mock(
        return_value=matrix_error(403, "M_FORBIDDEN", "not in room")
    )
    with pytest.raises(MatrixForbidden):
        await bot.get_state("!gone")


async def test_get_state_event_content(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.get(path=f"{V3}/rooms/!r:localhost/state/m.room.name/").respond(
        200, json={"name": "Agent"}
    )
    assert await bot.get_state_event("!r:localhost", "m.room.name") == {"name": "Agent"}
    raw = route.calls.last.request.url.raw_path
    assert raw == b"/_matrix/client/v3/rooms/%21r%3Alocalhost/state/m.room.name/"


async def test_get_state_event_missing_is_none(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.get(path=f"{V3}/rooms/!r/state/m.space.child/!c:x").mock(
        return_value=matrix_error(404, "M_NOT_FOUND", "Event not found.")
    )
    assert await bot.get_state_event("!r", "m.space.child", "!c:x") is None
    assert route.calls.last.request.url.raw_path.endswith(b"/m.space.child/%21c%3Ax")
    assert route.call_count == 1


async def test_put_state_event(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.put(path=f"{V3}/rooms/!space/state/m.space.child/!room").respond(
        200, json={"event_id": "$ev"}
    )
    content = {"via": ["localhost"], "suggested": True}
    assert await bot.put_state_event("!space", "m.space.child", content, "!room") == "$ev"
    request = route.calls.last.request
    assert request.method == "PUT"
    assert body_of(request) == content
    assert request.url.raw_path == b"/_matrix/client/v3/rooms/%21space/state/m.space.child/%21room"


async def test_join_returns_room_id(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.post(path=f"{V3}/rooms/!UkK-0bzABC/join").respond(
        200, json={"room_id": "!UkK-0bzABC"}
    )
    assert await bot.join("!UkK-0bzABC") == "!UkK-0bzABC"
    request = route.calls.last.request
    assert body_of(request) == {}
    assert request.url.raw_path == b"/_matrix/client/v3/rooms/%21UkK-0bzABC/join"


async def test_invite_and_leave(router: respx.MockRouter, bot: MatrixClient) -> None:
    invite = router.post(path=f"{V3}/rooms/!r/invite").respond(200, json={})
    leave = router.post(path=f"{V3}/rooms/!r/leave").respond(200, json={})
    await bot.invite("!r", "@admin:localhost")
    await bot.leave("!r")
    assert body_of(invite.calls.last.request) == {"user_id": "@admin:localhost"}
    assert body_of(leave.calls.last.request) == {}
    assert (invite.call_count, leave.call_count) == (1, 1)


async def test_invite_forbidden(router: respx.MockRouter, bot: MatrixClient) -> None:
    router.post(path=f"{V3}/rooms/!r/invite").mock(
        return_value=matrix_error(403, "M_FORBIDDEN", "You don't have permission to invite")
    )
    with pytest.raises(MatrixForbidden):
        await bot.invite("!r", "@x:localhost")


async def test_joined_rooms_keeps_strings(router: respx.MockRouter, bot: MatrixClient) -> None:
    router.get(f"{V3}/joined_rooms").respond(200, json={"joined_rooms": ["!a", 5, "!b"]})
    assert await bot.joined_rooms() == ["!a", "!b"]


async def test_joined_rooms_without_list_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(f"{V3}/joined_rooms").respond(200, json={})
    with pytest.raises(MalformedResponse):
        await bot.joined_rooms()


async def test_joined_rooms_list_body_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(f"{V3}/joined_rooms").respond(200, json=["!a"])
    with pytest.raises(MalformedResponse):
        await bot.joined_rooms()


async def test_joined_members_list_body_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=f"{V3}/rooms/!r/joined_members").respond(200, json=["@a:x"])
    with pytest.raises(MalformedResponse):
        await bot.joined_members("!r")


async def test_joined_members(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.get(path=f"{V3}/rooms/!r:localhost/joined_members").respond(
        200,
        json={
            "joined": {
                BOT: {"display_name": "Bot", "avatar_url": None},
                "@quiet:localhost": {},
                "@odd:localhost": {"display_name": 3},
            }
        },
    )
    assert await bot.joined_members("!r:localhost") == {
        BOT: "Bot",
        "@quiet:localhost": None,
        "@odd:localhost": None,
    }
    raw = route.calls.last.request.url.raw_path
    assert raw == b"/_matrix/client/v3/rooms/%21r%3Alocalhost/joined_members"


async def test_joined_members_without_object_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=f"{V3}/rooms/!r/joined_members").respond(200, json={"joined": []})
    with pytest.raises(MalformedResponse):
        await bot.joined_members("!r")


# --- profiles and events --------------------------------------------------------------------


async def test_set_displayname_uses_own_user_id(
    router: respx.MockRouter, anon: MatrixClient
) -> None:
    agent = anon.as_user("@agent/1:localhost", "agent-token")
    route = router.put(path=f"{V3}/profile/@agent/1:localhost/displayname").respond(200, json={})
    await agent.set_displayname("Ägent Smith")
    request = route.calls.last.request
    assert (
        request.url.raw_path == b"/_matrix/client/v3/profile/%40agent%2F1%3Alocalhost/displayname"
    )
    assert body_of(request) == {"displayname": "Ägent Smith"}
    assert auth_of(request) == "Bearer agent-token"


async def test_set_displayname_without_user_id_sends_nothing(anon: MatrixClient) -> None:
    with pytest.raises(ValueError, match="user id"):
        await anon.as_user(None, "tok").set_displayname("x")


async def test_get_displayname(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.get(path=f"{V3}/profile/@a:localhost/displayname").respond(
        200, json={"displayname": "Alice"}
    )
    assert await bot.get_displayname("@a:localhost") == "Alice"
    assert route.calls.last.request.url.raw_path.endswith(b"/profile/%40a%3Alocalhost/displayname")


async def test_get_displayname_unknown_user_is_none(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=f"{V3}/profile/@nobody:localhost/displayname").mock(
        return_value=matrix_error(404, "M_NOT_FOUND", "Profile was not found")
    )
    assert await bot.get_displayname("@nobody:localhost") is None


async def test_send_event_with_txn_id(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.put(path=f"{V3}/rooms/!r/send/m.room.message/txn 1/a").respond(
        200, json={"event_id": "$e1"}
    )
    content = {"msgtype": "m.text", "body": "hi"}
    assert await bot.send_event("!r", content, txn_id="txn 1/a") == "$e1"
    request = route.calls.last.request
    assert request.method == "PUT"
    assert request.url.raw_path == b"/_matrix/client/v3/rooms/%21r/send/m.room.message/txn%201%2Fa"
    assert body_of(request) == content


async def test_send_event_generates_distinct_txn_ids(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.put(path__regex=rf"^{V3}/rooms/!r/send/m\.notice/[^/]+$").respond(
        200, json={"event_id": "$e"}
    )
    await bot.send_event("!r", {"body": "a"}, event_type="m.notice")
    await bot.send_event("!r", {"body": "b"}, event_type="m.notice")
    txns = [call.request.url.path.rsplit("/", 1)[1] for call in route.calls]
    assert len(txns) == 2 and txns[0] != txns[1]
    allowed = set(string.ascii_letters + string.digits + "-_")
    assert all(len(txn) >= 16 and set(txn) <= allowed for txn in txns)


async def test_send_event_without_event_id_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.put(path__startswith=f"{V3}/rooms/!r/send/").respond(200, json={})
    with pytest.raises(MalformedResponse):
        await bot.send_event("!r", {"body": "a"}, txn_id="t")


# --- space hierarchy ------------------------------------------------------------------------

HIERARCHY = "/_matrix/client/v1/rooms/!space:localhost/hierarchy"


def room(room_id: str, **extra: object) -> dict[str, object]:
    return {"room_id": room_id, "num_joined_members": 1, **extra}


async def test_hierarchy_page(router: respx.MockRouter, bot: MatrixClient) -> None:
    route = router.get(path=HIERARCHY).respond(
        200,
        json={
            "rooms": [
                room(
                    "!space:localhost",
                    name="Letta Agents",
                    room_type="m.space",
                    children_state=[
                        {"type": "m.space.child", "state_key": "!a", "content": {"via": ["x"]}},
                        {"bad": "event"},
                    ],
                ),
                {"no": "room id"},
                {"room_id": "!a", "name": 7, "num_joined_members": "two"},
            ],
            "next_batch": "nb1",
        },
    )
    page = await bot.hierarchy_page("!space:localhost", limit=10, from_token="t0")
    request = route.calls.last.request
    assert request.url.raw_path.startswith(
        b"/_matrix/client/v1/rooms/%21space%3Alocalhost/hierarchy?"
    )
    assert dict(request.url.params) == {"max_depth": "1", "limit": "10", "from": "t0"}
    assert page.next_batch == "nb1"
    space, child = page.rooms
    assert (space.room_id, space.name, space.room_type, space.num_joined_members) == (
        "!space:localhost",
        "Letta Agents",
        "m.space",
        1,
    )
    assert space.children_state == (StateEvent("m.space.child", "!a", {"via": ["x"]}),)
    assert (child.room_id, child.name, child.room_type, child.num_joined_members) == (
        "!a",
        None,
        None,
        0,
    )


async def test_hierarchy_page_without_rooms_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=HIERARCHY).respond(200, json={"next_batch": "x"})
    with pytest.raises(MalformedResponse):
        await bot.hierarchy_page("!space:localhost")


async def collect_hierarchy(client: MatrixClient) -> list[str]:
    return [item.room_id async for item in client.space_hierarchy("!space:localhost", limit=2)]


async def test_space_hierarchy_follows_next_batch(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.get(path=HIERARCHY).mock(
        side_effect=[
            httpx.Response(
                200, json={"rooms": [room("!space:localhost"), room("!a")], "next_batch": "p2"}
            ),
            httpx.Response(200, json={"rooms": [room("!b"), room("!c")], "next_batch": "p3"}),
            httpx.Response(200, json={"rooms": [room("!d")], "next_batch": ""}),
        ]
    )
    assert await collect_hierarchy(bot) == ["!space:localhost", "!a", "!b", "!c", "!d"]
    froms = [call.request.url.params.get("from") for call in route.calls]
    assert froms == [None, "p2", "p3"]
    assert all(call.request.url.params["limit"] == "2" for call in route.calls)


async def test_space_hierarchy_stops_when_next_batch_repeats(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    pages = iter(["p2", "p3", "p2", "p3"])

    def page(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("from", "p1")
        return httpx.Response(200, json={"rooms": [room(f"!{token}")], "next_batch": next(pages)})

    route = router.get(path=HIERARCHY).mock(side_effect=page)
    assert await collect_hierarchy(bot) == ["!p1", "!p2", "!p3"]
    assert route.call_count == 3


# --- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "errcode", "error_class"),
    [
        (403, "M_FORBIDDEN", MatrixForbidden),
        (400, "M_USER_IN_USE", MatrixUserInUse),
        (404, "M_NOT_FOUND", MatrixNotFound),
        (401, "M_UNKNOWN_TOKEN", MatrixUnknownToken),
        (401, "M_MISSING_TOKEN", MatrixUnknownToken),
        (429, "M_LIMIT_EXCEEDED", MatrixRateLimited),
        (400, "M_UNRECOGNIZED_FOO", MatrixError),
    ],
)
async def test_errcode_maps_to_class(
    router: respx.MockRouter,
    clock: FakeClock,
    status: int,
    errcode: str,
    error_class: type[MatrixError],
) -> None:
    client = connect(router, clock, NO_RETRY).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(
        return_value=matrix_error(status, errcode, "the server's words", retry_after_ms=250)
    )
    with pytest.raises(MatrixError) as caught:
        await client.whoami()
    error = caught.value
    assert type(error) is error_class
    assert (error.status, error.errcode, error.error) == (status, errcode, "the server's words")
    assert error.retry_after_ms == 250
    assert errcode in str(error) and str(status) in str(error)
    assert route.call_count == 1


async def test_429_waits_retry_after_ms_then_succeeds(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient
) -> None:
    route = router.get(f"{V3}/account/whoami").mock(
        side_effect=[
            matrix_error(429, "M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=1500),
            httpx.Response(200, json={"user_id": BOT}),
        ]
    )
    assert await bot.whoami() == BOT
    assert clock.sleeps == [1.5]
    assert route.call_count == 2


async def test_429_with_retry_after_header_only(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient
) -> None:
    route = router.get(f"{V3}/account/whoami").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, text="slow down"),
            httpx.Response(200, json={"user_id": BOT}),
        ]
    )
    assert await bot.whoami() == BOT
    assert clock.sleeps == [2.0]
    assert route.call_count == 2


async def test_429_without_errcode_is_rate_limited_with_header_wait(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, NO_RETRY).as_user(BOT, TOKEN)
    router.get(f"{V3}/account/whoami").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "2"}, text="<h1>slow down</h1>")
    )
    with pytest.raises(MatrixRateLimited) as caught:
        await client.whoami()
    assert (caught.value.status, caught.value.errcode) == (429, None)
    assert caught.value.retry_after_ms == 2000


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_retried_for_get(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient, status: int
) -> None:
    route = router.get(f"{V3}/joined_rooms").mock(
        side_effect=[httpx.Response(status), httpx.Response(200, json={"joined_rooms": ["!a"]})]
    )
    assert await bot.joined_rooms() == ["!a"]
    assert clock.sleeps == [0.5]
    assert route.call_count == 2


async def test_backoff_grows_and_is_capped(router: respx.MockRouter, clock: FakeClock) -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=1.5, deadline=100)
    client = connect(router, clock, policy).as_user(BOT, TOKEN)
    router.get(f"{V3}/account/whoami").mock(
        side_effect=[httpx.Response(503)] * 5 + [httpx.Response(200, json={"user_id": BOT})]
    )
    assert await client.whoami() == BOT
    assert clock.sleeps == [0.5, 1.0, 1.5, 1.5, 1.5]


@pytest.mark.parametrize(
    ("status", "errcode"), [(500, "M_UNKNOWN"), (400, "M_BAD_JSON"), (403, "M_FORBIDDEN")]
)
async def test_non_retryable_status_is_sent_once(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient, status: int, errcode: str
) -> None:
    route = router.get(f"{V3}/account/whoami").mock(return_value=matrix_error(status, errcode))
    with pytest.raises(MatrixError) as caught:
        await bot.whoami()
    assert (caught.value.status, caught.value.errcode) == (status, errcode)
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_create_room_not_retried_on_503(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient
) -> None:
    route = router.post(f"{V3}/createRoom").mock(return_value=httpx.Response(503))
    with pytest.raises(MatrixError) as caught:
        await bot.create_room(name="x")
    assert caught.value.status == 503
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_create_room_retried_on_429(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient
) -> None:
    route = router.post(f"{V3}/createRoom").mock(
        side_effect=[
            matrix_error(429, "M_LIMIT_EXCEEDED", retry_after_ms=300),
            httpx.Response(200, json={"room_id": "!r"}),
        ]
    )
    assert await bot.create_room(name="x") == "!r"
    assert route.call_count == 2
    assert clock.sleeps == [pytest.approx(0.3)]
    assert body_of(route.calls[0].request) == body_of(route.calls[1].request) == {"name": "x"}


async def test_max_attempts_exhausted_reraises_last_error(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, RetryPolicy(max_attempts=3)).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(504)]
    )
    with pytest.raises(MatrixError) as caught:
        await client.whoami()
    assert caught.value.status == 504
    assert route.call_count == 3
    assert clock.sleeps == [0.5, 1.0]


async def test_deadline_stops_retrying(router: respx.MockRouter, clock: FakeClock) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=100.0, deadline=5.0)
    client = connect(router, clock, policy).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(return_value=httpx.Response(503))
    with pytest.raises(MatrixError):
        await client.whoami()
    # 1 + 2 = 3 s spent; the next wait (4 s) would pass the 5 s deadline.
    assert clock.sleeps == [1.0, 2.0]
    assert route.call_count == 3


async def test_rate_limit_longer_than_deadline_raises_at_once(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, RetryPolicy(deadline=10)).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(
        return_value=matrix_error(429, "M_LIMIT_EXCEEDED", retry_after_ms=60_000)
    )
    with pytest.raises(MatrixRateLimited) as caught:
        await client.whoami()
    assert caught.value.retry_after_ms == 60_000
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_connection_error_retried_then_succeeds(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient
) -> None:
    route = router.post(f"{V3}/createRoom").mock(
        side_effect=[httpx.ConnectError, httpx.Response(200, json={"room_id": "!r"})]
    )
    # Even a non-idempotent call is repeated: a refused connection sent nothing.
    assert await bot.create_room() == "!r"
    assert route.call_count == 2
    assert clock.sleeps == [0.5]


async def test_persistent_connection_error_raises_connection_failed(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, RetryPolicy(max_attempts=3)).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(side_effect=httpx.ConnectError)
    with pytest.raises(ConnectionFailed) as caught:
        await client.whoami()
    assert caught.value.maybe_sent is False
    assert route.call_count == 3
    assert TOKEN not in str(caught.value)


async def test_read_timeout_raises_request_timeout(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, RetryPolicy(max_attempts=2)).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(side_effect=httpx.ReadTimeout)
    with pytest.raises(RequestTimeout) as caught:
        await client.whoami()
    assert caught.value.maybe_sent is True
    assert route.call_count == 2


async def test_read_timeout_on_create_room_not_retried(
    router: respx.MockRouter, clock: FakeClock, bot: MatrixClient
) -> None:
    route = router.post(f"{V3}/createRoom").mock(side_effect=httpx.ReadTimeout)
    with pytest.raises(RequestTimeout):
        await bot.create_room()
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_html_error_body_gives_readable_matrix_error(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, RetryPolicy(max_attempts=2)).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(
        return_value=httpx.Response(502, content=HTML_502, headers={"Content-Type": "text/html"})
    )
    with pytest.raises(MatrixError) as caught:
        await client.whoami()
    error = caught.value
    assert type(error) is MatrixServerError
    assert (error.status, error.errcode) == (502, None)
    assert "an HTML page '502 Bad Gateway'" in error.error
    assert "502 Bad Gateway" in str(error) and "<" not in str(error)
    assert error.body == HTML_502
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "content", "error_class", "text"),
    [
        (500, b'{"errcode": "M_UNKNOWN", "error": "db down"}', MatrixServerError, "db down"),
        (503, b"", MatrixServerError, "empty error body"),
        (502, HTML_502, MatrixServerError, "an HTML page '502 Bad Gateway'"),
        (500, b"<h1>Internal  Server\nError</h1>", MatrixServerError, "'Internal Server Error'"),
        (502, b"upstream reset", MatrixServerError, "non-JSON error body: 'upstream reset'"),
        (429, b"", MatrixRateLimited, "empty error body"),
        (403, b'{"errcode": "M_FORBIDDEN", "error": "no"}', MatrixForbidden, "no"),
        (400, b"<p>bad</p>", MatrixError, "non-JSON error body: '<p>bad</p>'"),
    ],
)
def test_error_class_and_text_follow_errcode_then_status(
    status: int, content: bytes, error_class: type[MatrixError], text: str
) -> None:
    error = MatrixError.from_response(status, content)

    assert type(error) is error_class
    assert text in error.error


async def test_malformed_json_success_body(router: respx.MockRouter, bot: MatrixClient) -> None:
    router.get(f"{V3}/account/whoami").respond(200, content=b"{not json")
    with pytest.raises(MalformedResponse) as caught:
        await bot.whoami()
    assert caught.value.status == 200
    # A successful body may hold an access token (login, register): it is not kept.
    assert caught.value.body is None


async def test_create_room_without_room_id_is_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.post(f"{V3}/createRoom").respond(200, json={"room_alias": "#x:localhost"})
    with pytest.raises(MalformedResponse, match="room_id"):
        await bot.create_room(name="x")
    assert route.call_count == 1


# --- token refresh --------------------------------------------------------------------------


def expiring_whoami(request: httpx.Request) -> httpx.Response:
    if auth_of(request) == f"Bearer {NEW_TOKEN}":
        return httpx.Response(200, json={"user_id": BOT})
    return matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")


async def test_unknown_token_relogs_in_once_and_repeats_with_new_token(
    router: respx.MockRouter, anon: MatrixClient
) -> None:
    heard: list[LoginResult] = []

    async def listener(result: LoginResult) -> None:
        heard.append(result)

    client = anon.as_user(BOT, TOKEN, Credentials("bot", "pw"), on_login=listener)
    whoami = router.get(f"{V3}/account/whoami").mock(side_effect=expiring_whoami)
    login = router.post(f"{V3}/login").respond(
        200, json={"user_id": BOT, "access_token": NEW_TOKEN, "device_id": "D2"}
    )
    assert await client.whoami() == BOT
    assert login.call_count == 1
    assert body_of(login.calls.last.request)["password"] == "pw"
    assert [auth_of(call.request) for call in whoami.calls] == [
        f"Bearer {TOKEN}",
        f"Bearer {NEW_TOKEN}",
    ]
    assert heard == [LoginResult(BOT, NEW_TOKEN, "D2")]
    assert client.access_token == NEW_TOKEN


async def test_unknown_token_twice_raises_after_one_relogin(
    router: respx.MockRouter, anon: MatrixClient
) -> None:
    client = anon.as_user(BOT, TOKEN, Credentials("bot", "pw"))
    whoami = router.get(f"{V3}/account/whoami").mock(
        return_value=matrix_error(401, "M_UNKNOWN_TOKEN")
    )
    login = router.post(f"{V3}/login").respond(200, json={"user_id": BOT, "access_token": "x"})
    with pytest.raises(MatrixUnknownToken):
        await client.whoami()
    assert (login.call_count, whoami.call_count) == (1, 2)


async def test_unknown_token_without_credentials_raises(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    # No login route: a login attempt would hit respx's "not mocked" assertion.
    whoami = router.get(f"{V3}/account/whoami").mock(
        return_value=matrix_error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
    )
    with pytest.raises(MatrixUnknownToken) as caught:
        await bot.whoami()
    assert caught.value.status == 401
    assert whoami.call_count == 1
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)


# --- secrets stay out of reprs and messages -------------------------------------------------


def test_reprs_hide_tokens_and_passwords() -> None:
    secrets = ("syt_hidden_token", "hunter2-password")
    client = MatrixClient.connect(make_transport(make_router(HOMESERVER)), HOMESERVER)
    texts = [
        repr(client.as_user(BOT, secrets[0], Credentials("bot", secrets[1]))),
        repr(Credentials("bot", secrets[1])),
        repr(LoginResult(BOT, secrets[0], "DEV")),
        repr(
            Request(
                "POST",
                f"{HOMESERVER}/_matrix/client/v3/login",
                {"Authorization": f"Bearer {secrets[0]}"},
                {"password": secrets[1]},
            )
        ),
    ]
    for text in texts:
        assert not any(secret in text for secret in secrets), text
    assert "@bot:localhost" in texts[0] and "has_token=True" in texts[0]


async def test_error_messages_never_contain_the_token(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, NO_RETRY).as_user(BOT, TOKEN)
    router.get(f"{V3}/account/whoami").mock(return_value=matrix_error(403, "M_FORBIDDEN"))
    router.get(f"{V3}/joined_rooms").mock(side_effect=httpx.RemoteProtocolError)
    router.post(f"{V3}/createRoom").respond(200, content=b"<html>")
    with pytest.raises(MatrixForbidden) as forbidden:
        await client.whoami()
    with pytest.raises(ConnectionFailed) as failed:
        await client.joined_rooms()
    with pytest.raises(MalformedResponse) as malformed:
        await client.create_room()
    errors = [forbidden.value, failed.value, malformed.value]
    for error in errors:
        assert TOKEN not in str(error) and TOKEN not in repr(error)


async def test_rate_limit_waits_the_servers_retry_after_once(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    """After one 429, the next call waits out the server's retry_after instead of hitting it."""
    client = connect(router, clock).as_user(BOT, TOKEN)
    route = router.get(f"{V3}/account/whoami").mock(
        side_effect=[
            matrix_error(429, "M_LIMIT_EXCEEDED", "slow down", retry_after_ms=2000),
            httpx.Response(200, json={"user_id": BOT}),
            httpx.Response(200, json={"user_id": BOT}),
        ]
    )
    started = clock.now

    assert await client.whoami() == BOT
    assert clock.now - started == 2.0
    assert await client.whoami() == BOT  # the pause is over: no further wait
    assert clock.now - started == 2.0 and route.call_count == 3


# --- room messages ------------------------------------------------------------------------

MESSAGES = "/_matrix/client/v3/rooms/!room:localhost/messages"


def message(body: str, sender: str = "@agent:localhost") -> dict[str, object]:
    return {"type": "m.room.message", "sender": sender, "content": {"body": body}}


async def test_recent_events_page_backwards_until_the_start_of_the_room(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.get(path=MESSAGES).mock(
        side_effect=[
            httpx.Response(200, json={"chunk": [message("3"), message("2")], "end": "t1"}),
            httpx.Response(200, json={"chunk": [message("1"), {"junk": True}], "start": "t1"}),
        ]
    )

    bodies = [e.content["body"] async for e in bot.recent_events("!room:localhost", page_size=2)]

    assert bodies == ["3", "2", "1"]
    assert [call.request.url.params.get("from") for call in route.calls] == [None, "t1"]
    assert all(call.request.url.params["dir"] == "b" for call in route.calls)
    assert route.calls.last.request.url.raw_path.startswith(
        b"/_matrix/client/v3/rooms/%21room%3Alocalhost/messages?"
    )


async def test_recent_events_stop_at_a_page_limit_and_on_a_repeated_token(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.get(path=MESSAGES).mock(
        return_value=httpx.Response(200, json={"chunk": [message("again")], "end": "same"})
    )

    seen = [e async for e in bot.recent_events("!room:localhost", max_pages=5)]

    assert len(seen) == 2 and route.call_count == 2  # "same" came back: no endless loop


async def test_recent_events_without_a_chunk_are_malformed(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    router.get(path=MESSAGES).mock(return_value=httpx.Response(200, json={"end": "t"}))
    with pytest.raises(MalformedResponse):
        [e async for e in bot.recent_events("!room:localhost")]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"server_name": "matrix.example.org"}, "matrix.example.org"),
        ({"server_name": ""}, None),
        ({"server_name": 42}, None),
        (["not", "an", "object"], None),
    ],
)
async def test_the_published_server_name_is_a_non_empty_string_or_none(
    router: respx.MockRouter, anon: MatrixClient, answer: object, expected: str | None
) -> None:
    router.get("/_matrix/key/v2/server").respond(200, json=answer)
    assert await anon.published_server_name() == expected


async def test_a_body_missing_what_the_api_promises_names_the_field(
    router: respx.MockRouter, anon: MatrixClient, bot: MatrixClient
) -> None:
    router.get("/_matrix/client/versions").respond(200, json={"unstable_features": {}})
    router.get(f"{V3}/joined_rooms").respond(200, json={})
    router.put(path__startswith=f"{V3}/rooms/!r/state/").respond(200, json={})
    router.post(f"{V3}/login").respond(200, json={"user_id": BOT, "device_id": "D"})

    problems = []
    for call in (
        anon.versions(),
        bot.joined_rooms(),
        bot.put_state_event("!r", "m.room.name", {"name": "N"}),
        bot.login("bot", "pw"),
    ):
        with pytest.raises(MalformedResponse) as caught:
            await call
        problems.append((caught.value.status, caught.value.problem))

    assert problems == [
        (200, "versions: missing list field 'versions'"),
        (200, "joined_rooms: missing list field 'joined_rooms'"),
        (200, "put state: missing string field 'event_id'"),
        (200, "login: missing string field 'access_token'"),
    ]


async def test_a_join_returns_the_room_id_the_server_names(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    """Joining by alias: the answer names the room."""
    router.post(path=f"{V3}/rooms/#agents:localhost/join").respond(
        200, json={"room_id": "!real:localhost"}
    )
    router.post(path=f"{V3}/rooms/!quiet:localhost/join").respond(200, json={})

    assert await bot.join("#agents:localhost") == "!real:localhost"
    assert await bot.join("!quiet:localhost") == "!quiet:localhost"


async def test_a_text_message_is_m_text_under_the_given_transaction(
    router: respx.MockRouter, bot: MatrixClient
) -> None:
    route = router.put(path__startswith=f"{V3}/rooms/!r/send/m.room.message/").respond(
        200, json={"event_id": "$e"}
    )

    assert await bot.send_text("!r", "hello", txn_id="txn-1") == "$e"

    request = route.calls.last.request
    assert request.url.path.endswith("/send/m.room.message/txn-1")
    assert body_of(request) == {"msgtype": "m.text", "body": "hello"}
