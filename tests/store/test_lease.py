"""The replicas' lease against a real PostgreSQL: one leader at a time, a takeover once the
leader's session is gone, fencing of a stale leader's writes, triggers through NOTIFY."""

from __future__ import annotations

import psycopg
import pytest

from app.daemon.replicas import ReplicaRole
from app.errors import LeaseLost, StateFileError
from app.state import AgentMapping
from app.state.lease import LEASE_LOCK_KEY, Lease
from app.state.postgres import PostgresStore

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
