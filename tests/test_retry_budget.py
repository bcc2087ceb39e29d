"""RETRY_BUDGET in JsonApi: a server that answered and then stopped is asked again until the
budget is spent; one that never answered is given up on fast; a lost server is not asked again.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from app.errors import ConnectionFailed, MatrixError
from app.http.retry import RetryPolicy
from app.matrix import MatrixClient

from helpers import HOMESERVER, FakeClock, make_router, make_transport

pytestmark = pytest.mark.anyio

V3 = "/_matrix/client/v3"
BOT = "@bot:localhost"
ME = httpx.Response(200, json={"user_id": BOT})
ROOMS = httpx.Response(200, json={"joined_rooms": []})
# Backoff from 0.5 s, asked again at least every 4 s, the last wait cut to end at 30 s.
BUDGET_WAITS = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 2.5]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with make_router(HOMESERVER) as mock_router:
        yield mock_router


def client(router: respx.MockRouter, clock: FakeClock, budget: float = 30.0) -> MatrixClient:
    policy = RetryPolicy(budget=budget)
    anonymous = MatrixClient.connect(
        make_transport(router), HOMESERVER, policy=policy, pacing=clock.pacing()
    )
    return anonymous.as_user(BOT, "token")


async def answered(router: respx.MockRouter, clock: FakeClock) -> MatrixClient:
    """A client whose server has answered once (whoami) in this run."""
    bot = client(router, clock)
    router.get(f"{V3}/account/whoami").mock(return_value=ME)
    assert await bot.whoami() == BOT
    return bot


async def test_a_server_that_answered_and_stopped_is_asked_again_for_the_budget(
    router: respx.MockRouter,
) -> None:
    clock = FakeClock()
    bot = await answered(router, clock)
    rooms = router.get(f"{V3}/joined_rooms").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(ConnectionFailed) as caught:
        await bot.joined_rooms()

    assert clock.sleeps == BUDGET_WAITS and sum(clock.sleeps) == 30.0
    assert rooms.call_count == len(BUDGET_WAITS) + 1
    assert "RETRY_BUDGET" in str(caught.value)


async def test_once_the_budget_is_spent_no_call_is_sent_or_waits(
    router: respx.MockRouter,
) -> None:
    clock = FakeClock()
    bot = client(router, clock)
    me = router.get(f"{V3}/account/whoami").mock(return_value=ME)
    router.get(f"{V3}/joined_rooms").mock(side_effect=httpx.ConnectError("refused"))
    await bot.whoami()
    with pytest.raises(ConnectionFailed):
        await bot.joined_rooms()
    waited = len(clock.sleeps)

    with pytest.raises(ConnectionFailed) as caught:
        await bot.whoami()

    assert me.call_count == 1 and len(clock.sleeps) == waited
    assert caught.value.maybe_sent is False
    assert "not sent" in str(caught.value) and "RETRY_BUDGET=30 s" in str(caught.value)


async def test_a_server_back_within_the_budget_is_ridden_out(router: respx.MockRouter) -> None:
    clock = FakeClock()
    bot = await answered(router, clock)
    down = [httpx.ConnectError("refused")] * 5 + [httpx.Response(502)] * 2
    router.get(f"{V3}/joined_rooms").mock(side_effect=[*down, ROOMS])

    assert await bot.joined_rooms() == []
    assert clock.sleeps == BUDGET_WAITS[:7]


async def test_a_refused_create_room_is_retried_for_the_budget_but_a_502_is_not(
    router: respx.MockRouter,
) -> None:
    """A refused connection sent nothing; a 502 may hide a room that was created."""
    clock = FakeClock()
    bot = await answered(router, clock)
    create = router.post(f"{V3}/createRoom").mock(
        side_effect=[httpx.ConnectError("refused")] * 6
        + [httpx.Response(200, json={"room_id": "!r"}), httpx.Response(502)]
    )

    assert await bot.create_room(name="x") == "!r"
    with pytest.raises(MatrixError) as caught:
        await bot.create_room(name="y")
    assert caught.value.status == 502 and create.call_count == 8
    assert clock.sleeps == BUDGET_WAITS[:6]


async def test_a_server_that_never_answered_is_given_up_on_after_three_connects(
    router: respx.MockRouter,
) -> None:
    clock = FakeClock()
    bot = client(router, clock, budget=300.0)
    route = router.get(f"{V3}/account/whoami").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(ConnectionFailed) as caught:
        await bot.whoami()

    assert route.call_count == 3 and clock.sleeps == [0.5, 1.0]
    assert "RETRY_BUDGET" not in str(caught.value)


async def test_a_zero_budget_rides_out_nothing_and_loses_nothing(
    router: respx.MockRouter,
) -> None:
    clock = FakeClock()
    bot = client(router, clock, budget=0.0)
    me = router.get(f"{V3}/account/whoami").mock(side_effect=[ME, httpx.ConnectError("x"), ME])
    await bot.whoami()

    with pytest.raises(ConnectionFailed):
        await bot.whoami()
    assert await bot.whoami() == BOT  # the next call is still sent
    assert me.call_count == 3 and clock.sleeps == []
