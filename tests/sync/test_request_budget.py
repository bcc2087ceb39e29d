"""Request budgets of issue 4, counted on the respx fake (counts, never times).

- a new agent costs at most 7 Matrix requests and no password login (registration returns
  the token), with history import off;
- a re-sync with nothing changed costs at most 3 Matrix requests in total, whatever N
  (issue 11: one read of the admin's /sync), no login and no new device;
- a rename costs a small fixed number of requests.

Every test also checks that the work was really done, so a sync that silently skipped the
agents cannot pass on a low count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.state import MappingStore
from app.sync.report import SyncReport
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio

N = 10
MAX_REQUESTS_PER_NEW_AGENT = 7
# A rename: m.room.name in the room, the agent's display name, and the admin's /sync that
# confirms the room holds the name (once per sync that wrote state, whatever it wrote).
MAX_EXTRA_REQUESTS_FOR_A_RENAME = 3


@dataclass(frozen=True)
class Cost:
    """What one sync cost on the fake homeserver."""

    report: SyncReport
    requests: Counter[str]
    logins: int
    devices: int

    @property
    def total(self) -> int:
        return sum(self.requests.values())


async def measured_sync(h: SyncHarness) -> Cost:
    hs = h.homeserver
    before = Counter(hs.requests_by_kind)
    logins, devices = hs.logins, hs.devices_created
    report = await h.sync(history_import_limit=0)
    requests = Counter(hs.requests_by_kind)
    requests.subtract(before)
    return Cost(report, +requests, hs.logins - logins, hs.devices_created - devices)


def add_agents(h: SyncHarness, count: int) -> list[str]:
    return [h.letta.add_agent(f"Agent {i}") for i in range(count)]


def assert_provisioned(h: SyncHarness, agent_ids: list[str], cost: Cost) -> None:
    """Every agent has its user, name, room (admin and bot joined) and space link."""
    assert cost.report.ok, cost.report.failures
    assert sorted(cost.report.rooms_created) == sorted(agent_ids)
    hs, space_id = h.homeserver, cost.report.space_id
    assert space_id is not None
    store = MappingStore.read(h.data_dir)
    for agent_id in agent_ids:
        agent = h.letta.agent(agent_id)
        mapping = store.get(agent_id)
        assert mapping is not None and mapping.room_id is not None
        assert hs.displayname(mapping.matrix_user_id) == agent.name
        members = hs.members(mapping.room_id)
        for user in (mapping.matrix_user_id, h.admin_id, h.bot_id):
            assert members.get(user) == "join", (agent_id, user)
        assert hs.state(space_id, "m.space.child", mapping.room_id) is not None


async def test_new_agents_cost_at_most_seven_requests_each(sync_harness: SyncHarness) -> None:
    h = sync_harness
    await measured_sync(h)  # bot, admin and space set up
    overhead = await measured_sync(h)  # what any sync costs with no agent
    agent_ids = add_agents(h, N)

    cost = await measured_sync(h)

    assert_provisioned(h, agent_ids, cost)
    per_agent = (cost.total - overhead.total) / N
    assert per_agent <= MAX_REQUESTS_PER_NEW_AGENT, (per_agent, cost.requests, overhead.requests)
    assert cost.logins == 0
    assert cost.devices == N  # one per registration, none from a login


async def test_fresh_deployment_costs_at_most_seven_requests_per_agent(
    sync_harness: SyncHarness, tmp_path: Path
) -> None:
    empty = SyncHarness(tmp_path / "empty")
    overhead = await measured_sync(empty)  # registers bot and admin, creates the space
    h = sync_harness
    agent_ids = add_agents(h, N)

    cost = await measured_sync(h)

    assert_provisioned(h, agent_ids, cost)
    per_agent = (cost.total - overhead.total) / N
    assert per_agent <= MAX_REQUESTS_PER_NEW_AGENT, (per_agent, cost.requests, overhead.requests)
    assert cost.logins == overhead.logins == 0
    assert cost.devices - overhead.devices == N


STEADY_MAX_REQUESTS = 3


@pytest.mark.parametrize("agents", [N, 60, 400])
async def test_steady_state_stays_within_budget(sync_harness: SyncHarness, agents: int) -> None:
    h = sync_harness
    agent_ids = add_agents(h, agents)
    first = await measured_sync(h)
    assert_provisioned(h, agent_ids, first)
    rooms_before = set(h.homeserver.room_ids())

    cost = await measured_sync(h)

    assert cost.report.ok, cost.report.failures
    assert cost.report.agents_seen == agents
    assert cost.total <= STEADY_MAX_REQUESTS, cost.requests
    assert cost.logins == 0
    assert cost.devices == 0
    assert set(h.homeserver.room_ids()) == rooms_before
    assert cost.report.rooms_created == cost.report.users_created == cost.report.repaired == []


async def test_rename_costs_a_bounded_number_of_requests(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_ids = add_agents(h, N)
    await measured_sync(h)
    steady = await measured_sync(h)
    renamed = agent_ids[3]
    h.letta.rename(renamed, "Meridian")

    cost = await measured_sync(h)

    assert cost.report.ok, cost.report.failures
    assert cost.report.renamed == [renamed]
    mapping = MappingStore.read(h.data_dir).get(renamed)
    assert mapping is not None and mapping.room_id is not None
    assert h.homeserver.displayname(mapping.matrix_user_id) == "Meridian"
    assert h.homeserver.state(mapping.room_id, "m.room.name") == {"name": "Meridian"}
    assert cost.total - steady.total <= MAX_EXTRA_REQUESTS_FOR_A_RENAME, cost.requests
    assert cost.logins == 0
    assert cost.devices == 0


# Per room that drifted (an agent that left): the admin API's deactivation check, the invite
# and the agent's join; one more for slack.
MAX_REQUESTS_PER_DRIFTED_ROOM = 4


@pytest.mark.parametrize("drifted", [1, 5, 20])
async def test_drift_costs_a_few_requests_per_changed_room(
    sync_harness: SyncHarness, drifted: int
) -> None:
    h = sync_harness
    agent_ids = add_agents(h, 40)
    await measured_sync(h)
    await measured_sync(h)
    store = MappingStore.read(h.data_dir)
    for agent_id in agent_ids[:drifted]:
        mapping = store.get(agent_id)
        assert mapping is not None and mapping.room_id is not None
        h.homeserver.force_leave(mapping.room_id, mapping.matrix_user_id)

    cost = await measured_sync(h)

    assert cost.report.ok, cost.report.failures
    assert sorted(cost.report.repaired) == sorted(agent_ids[:drifted])
    budget = STEADY_MAX_REQUESTS + MAX_REQUESTS_PER_DRIFTED_ROOM * drifted
    assert cost.total <= budget, cost.requests
