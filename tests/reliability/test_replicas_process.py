"""Three `letta-matrix-sync run` replicas on one real PostgreSQL, over the fakes served on
127.0.0.1: one leads and syncs, two stand by; a webhook on a standby reaches the leader
through the database; the leader SIGKILLed while a room creation is in flight is replaced
within 2 intervals, and the next sync converges with no duplicate user or room."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from reliability_support import tagged_rooms
from served_fakes import ADMIN, BOT, Served, SyncProcess, Trap, free_port, sync_env, wait_for

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

INTERVAL = 1.5
BACKENDS = ("asyncio", "trio", "asyncio")  # replicas may even differ in their event loop


def readiness(port: int) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def ready_roles(ports: list[int]) -> list[str]:
    """The roles of the replicas that answer 200 on /readyz."""
    answers = [readiness(port) for port in ports]
    return [body["role"] for status, body in answers if status == 200]


def rooms_in_database(url: str) -> dict[str, str]:
    """agent id -> room id of every mapping whose room was created."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT agent_id, data->>'room_id' FROM letta_matrix_sync_mappings "
            "WHERE (data->>'room_created')::boolean"
        ).fetchall()
    return {agent: room for agent, room in rows}


def agent_users_in_database(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT data->>'matrix_user_id' FROM letta_matrix_sync_mappings"
        ).fetchall()
    return {row[0] for row in rows}


def one_user_and_one_room_each(served: Served, agents: list[str], url: str) -> None:
    """What the homeserver holds and what the database records agree: nothing twice."""
    hs = served.homeserver
    rooms = tagged_rooms(hs)
    assert {agent: len(rooms.get(agent, [])) for agent in agents} == dict.fromkeys(agents, 1)
    assert rooms_in_database(url) == {agent: rooms[agent][0] for agent in agents}
    core = {f"@{ADMIN}:localhost", f"@{BOT}:localhost"}
    assert set(hs.user_ids()) - core == agent_users_in_database(url)
    assert len(agent_users_in_database(url)) == len(agents)


def roles_once_settled(ports: list[int], replicas: list[SyncProcess]) -> tuple[int, list[int]]:
    """The leader's index and the standbys', once one leads and two stand by."""
    assert wait_for(
        lambda: sorted(ready_roles(ports)) == ["leader", "standby", "standby"], *replicas
    ), [r.stderr[-1500:] for r in replicas]
    leader = next(n for n, p in enumerate(ports) if readiness(p)[1]["role"] == "leader")
    return leader, [n for n in range(len(ports)) if n != leader]


def start_replicas(
    urls: tuple[str, str], ports: list[int], tmp_path: Path, **settings: str
) -> list[SyncProcess]:
    """One `run` per port, each with a data directory of its own (nothing shared but the
    database)."""
    replicas = []
    for n, port in enumerate(ports):
        env = sync_env(
            *urls,
            tmp_path / f"data-{n}",
            SYNC_INTERVAL=str(INTERVAL),
            LISTEN_ADDRESS=f"127.0.0.1:{port}",
            SYNC_BACKEND=BACKENDS[n],
            **settings,
        )
        replicas.append(SyncProcess.start(env, tmp_path, f"replica-{n}", command="run"))
    return replicas


def test_three_replicas_one_leader_webhook_forwarding_and_takeover_after_sigkill(
    tmp_path: Path, postgres_url: str
) -> None:
    served = Served()
    agents = [served.letta.add_agent(f"Agent {n}") for n in range(2)]
    ports = [free_port() for _ in range(3)]
    replicas: list[SyncProcess] = []
    with served.running() as urls:
        replicas += start_replicas(urls, ports, tmp_path, MATRIX_STORE_URL=postgres_url)
        try:
            leader, standbys = roles_once_settled(ports, replicas)
            assert set(rooms_in_database(postgres_url)) == set(agents)

            # A webhook on a standby: the leader syncs the new agent.
            agents.append(served.letta.add_agent("Agent 2"))
            hook = httpx.post(f"http://127.0.0.1:{ports[standbys[0]]}/sync", timeout=5)
            assert hook.status_code == 202 and hook.json()["forwarded_to_leader"] is True
            assert wait_for(lambda: agents[2] in rooms_in_database(postgres_url), *replicas)
            assert "requested through another replica" in replicas[leader].stderr

            # The leader dies between creating a room and saving it.
            served.trap = Trap("POST", "/createRoom", k=1, hold=True)
            agents.append(served.letta.add_agent("Agent 3"))
            assert served.trap.fired.wait(30), replicas[leader].stderr[-1500:]
            replicas[leader].proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            replicas[leader].proc.wait(30)
            served.trap.release.set()
            survivors = [ports[n] for n in standbys]
            assert wait_for(lambda: "leader" in ready_roles(survivors), timeout=30)
            takeover = time.monotonic() - killed_at
            assert sorted(ready_roles(survivors)) == ["leader", "standby"]
            assert wait_for(lambda: set(rooms_in_database(postgres_url)) == set(agents))
        finally:
            for replica in replicas:
                if replica.proc.poll() is None:
                    replica.proc.send_signal(signal.SIGTERM)
            codes = [replica.wait() for replica in replicas]
    assert takeover <= 2 * INTERVAL, f"took over {takeover:.2f} s after the kill"
    assert codes[leader] == -signal.SIGKILL
    assert [codes[n] for n in standbys] == [0, 0]
    one_user_and_one_room_each(served, agents, postgres_url)
    print(f"takeover {takeover:.2f} s after SIGKILL (interval {INTERVAL} s)")


LEASE_TTL = 4.0


def test_a_paused_leader_is_replaced_within_the_ttl_and_steps_down_when_it_wakes(
    tmp_path: Path, postgres_url: str
) -> None:
    """SIGSTOP keeps the leader's database session (and its advisory lock) open: only the
    heartbeat's age, on the database's clock, tells the standbys it is gone. Woken, the old
    leader creates nothing and steps down."""
    served = Served()
    agents = [served.letta.add_agent(f"Agent {n}") for n in range(2)]
    ports = [free_port() for _ in range(3)]
    replicas: list[SyncProcess] = []
    with served.running() as urls:
        one_at_a_time = {"SYNC_CONCURRENCY": "1", "LEASE_TTL": str(LEASE_TTL)}
        replicas += start_replicas(
            urls, ports, tmp_path, MATRIX_STORE_URL=postgres_url, **one_at_a_time
        )
        try:
            leader, standbys = roles_once_settled(ports, replicas)
            assert wait_for(lambda: set(rooms_in_database(postgres_url)) == set(agents))

            # The leader is paused in the middle of a sync, a room creation answered but
            # not yet read, with more agents to go.
            served.trap = Trap("POST", "/createRoom", k=1, hold=True)
            agents += [served.letta.add_agent(f"New {n}") for n in range(3)]
            httpx.post(f"http://127.0.0.1:{ports[leader]}/sync", timeout=5)
            assert served.trap.fired.wait(30), replicas[leader].stderr[-1500:]
            replicas[leader].proc.send_signal(signal.SIGSTOP)
            paused_at = time.monotonic()
            served.trap.release.set()
            hook = httpx.post(f"http://127.0.0.1:{ports[standbys[0]]}/sync", timeout=5)
            assert hook.status_code == 202

            survivors = [ports[n] for n in standbys]
            assert wait_for(lambda: set(rooms_in_database(postgres_url)) == set(agents))
            synced = time.monotonic() - paused_at
            # A standby's readiness follows at its next look at the lease (a quarter interval).
            assert wait_for(lambda: sorted(ready_roles(survivors)) == ["leader", "standby"])
            creates_before_waking = len(served.creates)

            replicas[leader].proc.send_signal(signal.SIGCONT)
            woke_at = time.monotonic()
            assert wait_for(lambda: "stepping down" in replicas[leader].stderr, timeout=30)
            assert wait_for(lambda: readiness(ports[leader])[1].get("role") == "standby")
            time.sleep(3 * INTERVAL)  # what it would do next, it does now
            late_creates = [t for t in served.creates[creates_before_waking:] if t >= woke_at]
        finally:
            for replica in replicas:
                if replica.proc.poll() is None:
                    replica.proc.send_signal(signal.SIGCONT)
                    replica.proc.send_signal(signal.SIGTERM)
            codes = [replica.wait() for replica in replicas]
    assert synced <= LEASE_TTL + 2 * INTERVAL, f"synced {synced:.2f} s after the pause"
    assert late_creates == [] and codes == [0, 0, 0]
    assert replicas[leader].stderr.count("stepping down") == 1
    one_user_and_one_room_each(served, agents, postgres_url)
    print(f"agents synced {synced:.2f} s after SIGSTOP (TTL {LEASE_TTL} s, interval {INTERVAL} s)")
