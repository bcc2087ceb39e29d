"""A replica standing by: it reports "standby", syncs nothing itself, and passes a webhook
to the leader. The lease itself is tested against a real PostgreSQL in tests/store."""

from __future__ import annotations

import json

import pytest

from app.daemon.http_server import HttpRequest
from app.daemon.metrics import SyncMetrics
from app.daemon.replicas import LeaderOnlyWrites, ReplicaRole
from app.daemon.routes import Routes
from app.daemon.runner import SyncRunner
from app.daemon.settings import ServiceSettings
from app.errors import LeaseLost, StateFileError
from app.http.transport import Request, Response
from app.state.lease import Lease

from helpers import CountingSyncs

pytestmark = pytest.mark.anyio


class FakeRole:
    def __init__(self) -> None:
        self.is_leader = False
        self.problem: str | None = None
        self.forwarded = 0
        self.unreachable = False
        self.heartbeat_age: float | None = 1.0
        self.leader_unresponsive: str | None = None

    async def forward(self) -> None:
        if self.unreachable:
            raise StateFileError("lost the lease connection to MATRIX_STORE_URL=postgresql://db")
        self.forwarded += 1


class ThreeRounds:
    """The runner's sleep: each interval passes at once, and the third stops the loop."""

    def __init__(self) -> None:
        self.rounds = 0
        self.runner: SyncRunner | None = None

    async def __call__(self, _seconds: float) -> None:
        self.rounds += 1
        if self.rounds == 3 and self.runner is not None:
            self.runner.stop()


def runner_with(role: FakeRole, syncs: CountingSyncs) -> SyncRunner:
    settings = ServiceSettings(interval=60, host="127.0.0.1", port=0)
    rounds = ThreeRounds()
    rounds.runner = SyncRunner(syncs, settings, SyncMetrics(), sleep=rounds, role=role)
    return rounds.runner


async def post_sync(runner: SyncRunner) -> tuple[int, dict[str, object]]:
    answer = await Routes(runner)(HttpRequest("POST", "/sync", {}))
    return answer.status, json.loads(answer.body)


async def get_readyz(runner: SyncRunner) -> tuple[int, dict[str, object]]:
    answer = await Routes(runner)(HttpRequest("GET", "/readyz", {}))
    return answer.status, json.loads(answer.body)


async def test_a_healthy_standby_is_ready_and_says_standby() -> None:
    role = FakeRole()
    runner = runner_with(role, CountingSyncs())
    status, body = await get_readyz(runner)
    assert status == 200 and body["role"] == "standby" and body["ready"] is True
    role.problem = "lost the lease connection"
    status, body = await get_readyz(runner)
    assert (status, body["role"], body["reason"]) == (503, "standby", "lost the lease connection")


async def test_a_webhook_on_a_standby_goes_to_the_leader_and_syncs_nothing_here() -> None:
    role, syncs = FakeRole(), CountingSyncs()
    runner = runner_with(role, syncs)
    status, body = await post_sync(runner)
    assert (status, body.get("forwarded_to_leader")) == (202, True)
    assert role.forwarded == 1
    await runner.run()  # three intervals pass, and a standby syncs in none of them
    assert syncs.count == 0


async def test_a_webhook_the_standby_cannot_pass_on_is_a_503() -> None:
    role = FakeRole()
    role.unreachable = True
    status, body = await post_sync(runner_with(role, CountingSyncs()))
    assert status == 503 and "cannot reach the leader" in str(body["error"])
    assert "postgresql://db" in str(body["error"])  # names the setting; no password in it


async def test_the_leader_syncs_on_a_webhook_itself() -> None:
    role, syncs = FakeRole(), CountingSyncs()
    role.is_leader = True
    runner = runner_with(role, syncs)
    status, body = await post_sync(runner)
    assert status == 202 and "forwarded_to_leader" not in body and role.forwarded == 0
    await runner.run()
    assert syncs.count == 3
    status, body = await get_readyz(runner)
    assert status == 200 and body["role"] == "leader"


async def test_a_standby_says_the_leader_is_unresponsive_once_its_heartbeat_is_past_the_ttl() -> (
    None
):
    """What a standby saw at its last look at the lease: the age of the leader's heartbeat
    (here as a standby that could not end the silent leader's session would keep seeing it)."""
    lease = Lease("postgresql://db.example/sync", "standby", ttl=15)
    role = ReplicaRole(lease, 1)
    runner = SyncRunner(CountingSyncs(), ServiceSettings(), SyncMetrics(), role=role)
    role.problem = None
    lease.leader, lease.leader_age = "host-a:41", 9.5
    fresh = runner.readiness()
    lease.leader_age = 21.0
    stale = runner.readiness()
    assert fresh.ready and "renewed the lease 9.5 s ago" in fresh.reason
    assert not stale.ready and stale.role == "standby"
    assert "host-a:41" in stale.reason and "unresponsive" in stale.reason
    assert "21.0 s ago" in stale.reason and "15 s" in stale.reason


class FakeLease:
    """A lease whose holder the test decides; `refresh` only reads that."""

    def __init__(self) -> None:
        self.is_leader = False
        self.token: int | None = None
        self.leader_age: float | None = None
        self.triggers = 0

    async def refresh(self) -> None:
        self.token = 7 if self.is_leader else None
        self.leader_age = 0.0 if self.is_leader else 2.0

    def take_triggers(self) -> int:
        taken, self.triggers = self.triggers, 0
        return taken


class Triggers:
    def __init__(self) -> None:
        self.count = 0

    def trigger(self) -> None:
        self.count += 1


async def test_a_replica_syncs_when_it_takes_the_lease_and_steps_down_only_when_it_loses_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lease, runner = FakeLease(), Triggers()
    metrics = SyncMetrics()
    role = ReplicaRole(lease, poll=5, metrics=metrics)  # type: ignore[arg-type]
    leading = lambda: metrics.registry.get_sample_value("letta_matrix_sync_leader")  # noqa: E731

    lease.is_leader = True
    await role.step(runner)  # type: ignore[arg-type]
    await role.step(runner)  # type: ignore[arg-type]
    assert runner.count == 1 and leading() == 1 and "stepping down" not in caplog.text

    lease.is_leader = False
    await role.step(runner)  # type: ignore[arg-type]
    assert "stepping down to standby: another replica holds the lease now" in caplog.text
    assert leading() == 0
    heartbeat = metrics.registry.get_sample_value("letta_matrix_sync_lease_heartbeat_age_seconds")
    assert heartbeat == 2.0  # the leader's, as this standby last saw it

    lease.is_leader, lease.triggers = True, 1  # leads again, with a webhook passed on to it
    await role.step(runner)  # type: ignore[arg-type]
    assert runner.count == 3  # the new lead syncs, and so does the forwarded request


class Recorded:
    """The inner transport: answers 200 and keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, request: Request) -> Response:
        self.sent.append(f"{request.method} {request.url}")
        return Response(200, content=b"{}")

    async def aclose(self) -> None:
        pass


class LapsingLease(FakeLease):
    def __init__(self) -> None:
        super().__init__()
        self.lapsed = False
        self.stepped_down = 0

    def valid(self) -> bool:
        return not self.lapsed

    def step_down(self) -> None:
        self.stepped_down += 1
        self.is_leader = False


async def test_writes_to_the_homeserver_leave_only_while_the_lease_holds() -> None:
    lease, inner = LapsingLease(), Recorded()
    metrics = SyncMetrics()
    writes = LeaderOnlyWrites(inner, ReplicaRole(lease, poll=5, metrics=metrics))  # type: ignore[arg-type]
    put = Request("PUT", "http://hs/_matrix/client/v3/rooms/%21r/state/m.room.name/")
    read = Request("GET", "http://hs/_matrix/client/v3/rooms/%21r/state")
    letta = Request("POST", "http://letta/v1/agents/search")

    await writes.send(put)
    lease.lapsed = True
    await writes.send(read)  # reads and Letta's requests always go
    await writes.send(letta)
    with pytest.raises(LeaseLost, match="not sent: this replica's lease may have lapsed"):
        await writes.send(put)

    assert inner.sent == [
        f"PUT {put.url}",
        f"GET {read.url}",
        f"POST {letta.url}",
    ]
    assert lease.stepped_down == 1
    assert metrics.registry.get_sample_value("letta_matrix_sync_leader") == 0
