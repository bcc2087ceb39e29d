"""What calls to one server share: reachability, per-identity rate gates, congestion, and the
sync's adaptive concurrency built on it. Virtual time, both backends."""

from __future__ import annotations

import anyio
import pytest

from app.http.server_state import Congestion, RateGates, Reachability
from app.sync.throttle import AdaptiveLimiter
from app.testing.virtual_clock import VirtualClock

pytestmark = pytest.mark.anyio


# Reachability ---------------------------------------------------------------------------------


def test_an_outage_starts_at_the_first_failure_and_ends_with_any_answer() -> None:
    seen = Reachability()
    seen.failure(10.0)
    seen.failure(12.0)
    assert (seen.answered, seen.outage_age(15.0)) == (False, 5.0)
    seen.answer()
    assert (seen.answered, seen.outage_age(15.0)) == (True, 0.0)


def test_the_server_is_lost_only_when_down_for_the_whole_budget() -> None:
    seen = Reachability()
    seen.answer()
    seen.failure(100.0)
    seen.give_up(120.0, budget=30.0)  # one call gave up, but the server is down only 20 s
    assert not seen.lost
    seen.give_up(130.0, budget=30.0)
    assert seen.lost and seen.lost_after == 30.0


def test_a_zero_budget_never_declares_the_server_lost() -> None:
    seen = Reachability()
    seen.failure(100.0)
    seen.give_up(100.0, budget=0.0)
    assert not seen.lost


# Congestion -----------------------------------------------------------------------------------


def test_congestion_rises_once_per_burst_of_429s_up_to_its_cap() -> None:
    congestion = Congestion(cooldown=1.0, calm=5.0, max_level=3)
    for now in (0.0, 0.1, 0.5):
        congestion.rate_limited(now)
    assert congestion.settle(0.5) == 1
    for now in (1.2, 2.5, 4.0, 5.5):
        congestion.rate_limited(now)
    assert congestion.settle(5.5) == 3


def test_congestion_falls_one_step_per_calm_spell() -> None:
    congestion = Congestion(cooldown=1.0, calm=5.0)
    congestion.rate_limited(0.0)
    congestion.rate_limited(1.0)
    assert congestion.settle(5.9) == 2  # the last 429 was at 1.0: not calm for 5 s yet
    assert congestion.settle(6.0) == 1
    assert congestion.settle(10.9) == 1
    assert congestion.settle(11.0) == 0
    assert congestion.settle(100.0) == 0


# Rate gates -----------------------------------------------------------------------------------


async def test_an_identity_never_limited_passes_straight_through() -> None:
    clock = VirtualClock()
    gates = RateGates(clock.monotonic, clock.sleep)
    async with gates.turn("Bearer a") as holding:
        assert holding is False
    assert clock.sleeps == []


async def test_a_paused_identity_waits_then_goes_one_at_a_time() -> None:
    clock = VirtualClock()
    gates = RateGates(clock.monotonic, clock.sleep)
    gates.pause("Bearer a", clock.now + 3.0)
    inside: list[int] = []
    entered: list[float] = []

    async def caller() -> None:
        async with gates.turn("Bearer a") as holding:
            assert holding
            inside.append(1)
            entered.append(clock.now)
            assert len(inside) == 1  # nobody else of this identity is in
            await clock.sleep(1.0)  # the holder's own 429 wait, say
            inside.pop()

    async with clock.running(), anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(caller)
        async with gates.turn("Bearer b") as other:
            assert other is False  # another identity is not held up

    assert entered == [1003.0, 1004.0, 1005.0, 1006.0]
    assert not gates.limited("Bearer a")  # the gate goes once nobody waits at it


# Adaptive concurrency -------------------------------------------------------------------------


async def test_concurrency_halves_while_the_server_says_429_and_recovers_after() -> None:
    clock = VirtualClock()
    congestion = Congestion(cooldown=1.0, calm=5.0)
    limiter = AdaptiveLimiter(8, congestion, clock.monotonic)
    congestion.rate_limited(clock.now)
    running = 0
    peaks: dict[str, int] = {"limited": 0, "calm": 0}

    async def agent() -> None:
        nonlocal running
        async with limiter.slot():
            running += 1
            phase = "limited" if clock.now < 1005.0 else "calm"
            peaks[phase] = max(peaks[phase], running)
            await clock.sleep(1.0)
            running -= 1

    async with clock.running(), anyio.create_task_group() as group:
        for _ in range(40):
            group.start_soon(agent)

    assert peaks == {"limited": 4, "calm": 8}


def test_concurrency_never_falls_below_the_floor_nor_above_the_setting() -> None:
    congestion = Congestion(max_level=3)
    for now in range(5):
        congestion.rate_limited(float(now))
    assert AdaptiveLimiter(8, congestion, lambda: 5.0).limit == 3
    assert AdaptiveLimiter(2, congestion, lambda: 5.0).limit == 2
    assert AdaptiveLimiter(8, Congestion(), lambda: 5.0).limit == 8
