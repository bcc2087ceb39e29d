"""The replicas' lease against a real PostgreSQL: one leader at a time, a takeover once the
leader's session is gone, fencing of a stale leader's writes, triggers through NOTIFY."""

from __future__ import annotations

import anyio
import psycopg
import pytest

from app.daemon.metrics import SyncMetrics
from app.daemon.replicas import ReplicaRole
from app.daemon.runner import SyncRunner
from app.daemon.settings import ServiceSettings
from app.errors import LeaseLost, StateFileError
from app.state import AgentMapping
from app.state.lease import LEASE_LOCK_KEY, Lease
from app.state.postgres import PostgresStore
from app.testing.postgres import PostgresServer

from helpers import CountingSyncs

pytestmark = pytest.mark.anyio


def end_the_leaders_session(url: str) -> int:
    """What a SIGKILL or a network cut does to the leader: its session ends."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
            "WHERE locktype = 'advisory' AND classid = 0 AND objid = %s",
            (LEASE_LOCK_KEY,),
        ).fetchall()
    return len(rows)


def stored_mapping_names(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT data->>'agent_name' FROM letta_matrix_sync_mappings ORDER BY seq"
        ).fetchall()
    return [row[0] for row in rows]


async def test_only_one_of_three_replicas_leads(postgres_url: str) -> None:
    leases = [Lease(postgres_url, f"replica-{n}") for n in range(3)]
    try:
        for _ in range(2):  # a second round changes nothing
            leading = [await lease.refresh() for lease in leases]
            assert leading == [True, False, False]
        assert leases[0].token == 1
    finally:
        for lease in leases:
            await lease.aclose()


async def test_a_standby_takes_over_with_a_higher_token_once_the_leader_is_gone(
    postgres_url: str,
) -> None:
    old, new = Lease(postgres_url, "old"), Lease(postgres_url, "new")
    try:
        assert await old.refresh() and not await new.refresh()
        first = old.token
        assert end_the_leaders_session(postgres_url) == 1
        assert await new.refresh()
        assert new.token is not None and first is not None and new.token > first
        with pytest.raises(StateFileError, match="lost the lease connection"):
            await old.refresh()  # the paused old leader wakes up: its session is gone
        assert not old.is_leader
        assert not await old.refresh()  # reconnected, and stands by
    finally:
        await old.aclose()
        await new.aclose()


async def test_a_stale_leaders_writes_are_refused_and_the_new_leaders_kept(
    postgres_url: str,
) -> None:
    old, new = Lease(postgres_url, "old"), Lease(postgres_url, "new")
    try:
        await old.refresh()
        stale = await PostgresStore.open(postgres_url, fence=old.token)
        await stale.save_mapping(AgentMapping("agent-1", "Before", "@a:x", "pw"))
        await stale.aclose()  # between syncs: the per-sync lock is free again
        stale = await PostgresStore.open(postgres_url, fence=old.token)
        end_the_leaders_session(postgres_url)  # the old leader is paused meanwhile
        assert await new.refresh()
        with pytest.raises(LeaseLost, match="taken over"):
            await stale.save_mapping(AgentMapping("agent-1", "Stale", "@a:x", "pw"))
        with pytest.raises(LeaseLost):
            await stale.save_token("@a:x", "secret-token", None)
        await stale.aclose()  # its sync ends; the new leader's sync may start
        current = await PostgresStore.open(postgres_url, fence=new.token)
        await current.save_mapping(AgentMapping("agent-1", "New leader", "@a:x", "pw"))
        await current.aclose()
    finally:
        await old.aclose()
        await new.aclose()
    assert stored_mapping_names(postgres_url) == ["New leader"]
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM letta_matrix_sync_tokens").fetchone() == (0,)


async def test_a_standby_passes_a_trigger_to_the_leader_through_the_database(
    postgres_url: str,
) -> None:
    leader, standby = Lease(postgres_url, "leader"), Lease(postgres_url, "standby")
    try:
        await leader.refresh()
        await standby.refresh()
        assert leader.take_triggers() == 0
        await standby.notify_leader()
        await standby.notify_leader()
        await leader.refresh()
        assert leader.take_triggers() == 2
        assert leader.take_triggers() == 0
    finally:
        await leader.aclose()
        await standby.aclose()


async def test_closing_the_leader_frees_the_lease_at_once(postgres_url: str) -> None:
    first, second = Lease(postgres_url, "a"), Lease(postgres_url, "b")
    try:
        await first.refresh()
        await first.aclose()  # SIGTERM: released, not left to a timeout
        assert await second.refresh()
    finally:
        await second.aclose()


async def test_a_replica_opens_no_unfenced_store_when_it_does_not_lead(postgres_url: str) -> None:
    leader = ReplicaRole(Lease(postgres_url, "leader"), poll=1)
    standby = ReplicaRole(Lease(postgres_url, "standby"), poll=1)
    try:
        with pytest.raises(LeaseLost, match="does not hold the lease"):
            leader.fence()  # not looked at the lease yet
        assert await leader.lease.refresh() and not await standby.lease.refresh()
        assert leader.fence() == leader.lease.token
        with pytest.raises(LeaseLost):
            standby.fence()
    finally:
        await leader.lease.aclose()
        await standby.lease.aclose()


class Clock:
    """A monotonic clock the test moves: a pause is a jump."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def heartbeat_stopped(url: str, seconds_ago: float) -> None:
    """What a paused leader leaves behind: a session still open, and a heartbeat that ages."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE letta_matrix_sync_lease SET renewed_at = now() - make_interval(secs => %s)",
            (seconds_ago,),
        )


async def test_a_leader_that_stops_renewing_is_replaced_once_its_heartbeat_is_past_the_ttl(
    postgres_url: str,
) -> None:
    old, new = Lease(postgres_url, "old", ttl=5), Lease(postgres_url, "new", ttl=5)
    try:
        assert await old.refresh() and not await new.refresh()
        assert new.leader == "old" and new.leader_age is not None and new.leader_age < 5
        heartbeat_stopped(postgres_url, 4)
        assert not await new.refresh()  # within the time to live: the leader stays
        heartbeat_stopped(postgres_url, 6)
        taken = [await new.refresh() for _ in range(20)]  # its session ends, then the lock
        assert any(taken) and new.token is not None and old.token is not None
        assert new.token > old.token
        with pytest.raises(StateFileError, match="lost the lease connection"):
            await old.refresh()  # woken: its session was ended for it
        assert not old.is_leader and not await old.refresh()
        assert old.leader == "new"
    finally:
        await old.aclose()
        await new.aclose()


async def test_a_leader_renews_its_heartbeat_on_every_look(postgres_url: str) -> None:
    leader, standby = Lease(postgres_url, "leader", ttl=5), Lease(postgres_url, "standby", ttl=5)
    try:
        await leader.refresh()
        heartbeat_stopped(postgres_url, 60)
        assert await leader.refresh()  # renewed: now fresh again
        assert not await standby.refresh() and standby.leader_age is not None
        assert standby.leader_age < 5
    finally:
        await leader.aclose()
        await standby.aclose()


async def test_a_leader_woken_past_its_deadline_creates_nothing_and_steps_down_once(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    metrics = SyncMetrics()
    role = ReplicaRole(Lease(postgres_url, "paused", ttl=6, clock=clock), 1, metrics=metrics)
    runner = SyncRunner(CountingSyncs(), ServiceSettings(), metrics)
    try:
        await role.step(runner)
        assert role.is_leader and metric(metrics, "letta_matrix_sync_leader") == 1.0
        clock.now += 3.9  # renewed at 1000; the margin is a third of the ttl
        role.before_write()  # still surely valid
        clock.now += 0.2
        with pytest.raises(LeaseLost, match="may have lapsed"):
            role.before_write()
        with pytest.raises(LeaseLost):
            role.before_write()
        assert not role.is_leader and metric(metrics, "letta_matrix_sync_leader") == 0.0
        assert [r.message for r in caplog.records].count(
            "stepping down to standby: its lease may have lapsed (no renewal within its "
            "time to live)"
        ) == 1
        await role.step(runner)  # nobody else took it: it leads again, with a new token
        assert role.is_leader and role.lease.token == 2
        role.before_write()
    finally:
        await role.lease.aclose()


async def test_a_standby_reports_the_leaders_heartbeat_and_the_leader_metric(
    postgres_url: str,
) -> None:
    leader_metrics, standby_metrics = SyncMetrics(), SyncMetrics()
    leader = ReplicaRole(Lease(postgres_url, "leader"), 1, metrics=leader_metrics)
    standby = ReplicaRole(Lease(postgres_url, "standby"), 1, metrics=standby_metrics)
    runner = SyncRunner(CountingSyncs(), ServiceSettings(), standby_metrics, role=standby)
    try:
        await leader.step(runner)
        await standby.step(runner)
        assert metric(leader_metrics, "letta_matrix_sync_leader") == 1.0
        assert metric(standby_metrics, "letta_matrix_sync_leader") == 0.0
        age = metric(standby_metrics, "letta_matrix_sync_lease_heartbeat_age_seconds")
        assert 0 <= age < 5
        ready = runner.readiness()
        assert ready.ready and ready.role == "standby" and "renewed the lease" in ready.reason
    finally:
        await leader.lease.aclose()
        await standby.lease.aclose()


def metric(metrics: SyncMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def test_the_replicas_lead_again_after_a_database_restart(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    leader, standby = Lease(url, "leader"), Lease(url, "standby")
    try:
        assert await leader.refresh() and not await standby.refresh()
        first = leader.token
        await anyio.to_thread.run_sync(postgres_server.restart)
        for lease in (leader, standby):
            with pytest.raises(StateFileError, match="lost the lease connection"):
                await lease.refresh()
        heartbeat_stopped(url, 600)  # as after a restart longer than the time to live
        # The first back takes the lease; the other, reading a heartbeat that old a moment
        # before, must not end the new leader's sessions.
        leading = [await leader.refresh(), await standby.refresh(), await standby.refresh()]
        assert await leader.refresh()
        assert leading == [True, False, False] and leader.token is not None and first is not None
        assert leader.token > first and standby.leader == "leader"
    finally:
        await leader.aclose()
        await standby.aclose()


async def test_standbys_judge_the_heartbeat_by_the_leaders_own_time_to_live(
    postgres_url: str,
) -> None:
    patient = Lease(postgres_url, "patient", ttl=30)
    hasty = Lease(postgres_url, "hasty", ttl=5)
    try:
        assert await patient.refresh()
        heartbeat_stopped(postgres_url, 10)  # past the standby's 5 s, within the leader's 30
        assert not await hasty.refresh() and hasty.leader_ttl == 30
        assert await patient.refresh()  # still the leader: its sessions were left alone
    finally:
        await patient.aclose()
        await hasty.aclose()
