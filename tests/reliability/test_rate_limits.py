"""A busy homeserver: Synapse's default rate limits on the fake, in virtual time.

`FakeRateLimiter` answers 429 exactly as Synapse's buckets would, on a `VirtualClock`, so a
first sync that needs minutes of waiting runs in moments, with real concurrency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from reliability_support import assert_converged, seed

from app import SyncService
from app.errors import MatrixRateLimited
from app.http.httpx_transport import HttpxTransport
from app.matrix import MatrixClient
from app.testing.fake_rate_limits import FakeRateLimiter
from app.testing.harness import SyncHarness
from app.testing.synapse_limits import DEFAULT_LIMITS, Limit, least_time
from app.testing.virtual_clock import VirtualClock

from helpers import HOMESERVER

pytestmark = pytest.mark.anyio

LIMITED = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests"}


def limited_harness(
    data_dir: Path, clock: VirtualClock, agents: int
) -> tuple[SyncHarness, FakeRateLimiter, list[str]]:
    router = respx.MockRouter(using=None, assert_all_called=False)
    limiter = FakeRateLimiter(clock.monotonic, on_request=clock.touch)
    limiter.mount(router)  # before the fakes' routes
    h = SyncHarness(data_dir, router=router)
    ids = [h.letta.add_agent(f"Agent {i}") for i in range(agents)]
    return h, limiter, ids


def excess_actions(limiter: FakeRateLimiter) -> int:
    """Actions beyond the bursts: the least number of times anyone had to wait."""
    return sum(
        max(0, used - limiter.limits[name].burst) for (name, _), used in limiter.uses.items()
    )


async def test_first_sync_of_30_agents_on_default_limits_completes_near_the_bound(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    h, limiter, agents = limited_harness(tmp_path / "data", clock, 30)
    service = SyncService(
        h.config(history_import_limit=0), h.transport(), pacing=clock.pacing(), durable=False
    )
    started = clock.now

    async with clock.running(), service:
        report = await service.sync()

    assert report.ok, report.failures
    assert_converged(h.homeserver, h.data_dir, agents, members=(h.admin_id, h.bot_id))
    bound = least_time(limiter.uses)
    assert limiter.total_rate_limited > 0 and bound.seconds > 150  # the limits did bite
    elapsed = clock.now - started
    assert elapsed <= 1.25 * bound.seconds, (elapsed, bound)
    # Waiters leave one at a time: at most one 429 per action beyond a burst, not a stampede
    # (waking together, as before, cost about 1.5 per action).
    assert limiter.total_rate_limited <= excess_actions(limiter), limiter.rate_limited


async def test_429s_in_a_row_are_bounded_by_the_deadline_not_by_a_count(
    door_harness: Any,
) -> None:
    s = await seed(*door_harness)
    s.h.homeserver.fail_next("createRoom", 429, {**LIMITED, "retry_after_ms": 2000}, times=25)

    report = await s.h.sync()

    assert report.ok, report.failures
    assert s.sleeps() == [2.0] * 25
    await s.converge()


async def test_waiters_of_one_user_are_let_through_one_at_a_time() -> None:
    """Six sends of one user at once, one per second allowed: no stampede after each wait."""
    clock = VirtualClock()
    router = respx.MockRouter(using=None, assert_all_called=False, base_url=HOMESERVER)
    limits = {**DEFAULT_LIMITS, "rc_message": Limit(per_second=1.0, burst=1)}
    limiter = FakeRateLimiter(clock.monotonic, limits, on_request=clock.touch)
    limiter.mount(router)
    router.put(path__regex=r"/send/").respond(200, json={"event_id": "$sent"})
    transport = HttpxTransport(
        httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    )
    user = MatrixClient.connect(transport, HOMESERVER, pacing=clock.pacing()).as_user(
        "@agent:localhost", "agent-token"
    )
    sent: list[str] = []

    async def send(n: int) -> None:
        sent.append(await user.send_event("!room", {"body": str(n)}, txn_id=f"t{n}"))

    async with clock.running():
        async with anyio.create_task_group() as group:
            for n in range(6):
                group.start_soon(send, n)

    assert sent == ["$sent"] * 6
    assert limiter.uses[("rc_message", "Bearer agent-token")] == 6
    # Five sends beyond the burst of one: five waits of a second each, about one 429 apiece.
    assert limiter.total_rate_limited <= 6, limiter.rate_limited
    assert clock.now - 1000.0 == pytest.approx(5.0, abs=0.1)


async def test_rate_limit_that_outlasts_the_deadline_still_fails_the_call() -> None:
    clock = VirtualClock()
    router = respx.MockRouter(using=None, assert_all_called=False, base_url=HOMESERVER)
    router.get(path__regex=r"/whoami$").respond(429, json={**LIMITED, "retry_after_ms": 30_000})
    transport = HttpxTransport(
        httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    )
    user = MatrixClient.connect(transport, HOMESERVER, pacing=clock.pacing()).as_user(
        "@agent:localhost", "agent-token"
    )

    async with clock.running():
        with pytest.raises(MatrixRateLimited):
            await user.whoami()

    assert 90.0 <= clock.now - 1000.0 <= 120.0  # RetryPolicy.deadline
