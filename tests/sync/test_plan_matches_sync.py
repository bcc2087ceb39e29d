"""`plan` lists, just before each sync of every shared scenario, what that sync then reports.

Each scenario runs on the fakes through a world whose syncs are preceded by `plan --json`
(the CLI, as an operator runs it); the planned action of every agent is compared with where
the sync's report lists it. Syncs with an injected fault (`wrap`) or settings `plan` cannot be
given are left out: the plan describes the homeserver, not a fault yet to happen. One thing a
plan cannot know is let through: whether a login the sync must make (an agent whose stored
token the homeserver refuses) will be refused too, since a login is a write (a new device).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from drift_scenarios import DRIFT_SCENARIOS

from app import SyncReport
from app.testing.harness import SyncHarness

from scenarios import SCENARIOS
from worlds import FakeWorld, World, Wrap

pytestmark = pytest.mark.anyio

# Where a report lists an agent, by the action `plan` gives it.
REPORTED = {
    "create": "users_created",
    "create_room": "rooms_created",
    "rename": "renamed",
    "repair": "repaired",
    "migrate": "migrated",
}


def reported_action(report: SyncReport, agent_id: str) -> str:
    if any(failure.agent_id == agent_id for failure in report.failures):
        return "blocked"
    for action, listed in REPORTED.items():
        if agent_id in getattr(report, listed):
            return action
    return "ok"


def first_refused_login(report: SyncReport, agent_id: str) -> bool:
    return any(
        f.agent_id == agent_id and f.reason.startswith("MatrixLoginRefused") and not f.next_try
        for f in report.failures
    )


class PlanCheckingWorld(FakeWorld):
    def __init__(self, harness: SyncHarness) -> None:
        super().__init__(harness)
        self.mismatches: list[str] = []

    async def sync(self, *, wrap: Wrap | None = None, **overrides: Any) -> SyncReport:
        plannable = wrap is None and not overrides
        planned = await self._plan() if plannable else None
        report = await super().sync(wrap=wrap, **overrides)
        for agent_id, action in (planned or {}).items():
            done = reported_action(report, agent_id)
            if done != action and not first_refused_login(report, agent_id):
                self.mismatches.append(f"{agent_id}: plan said {action}, sync did {done}")
        return report

    async def _plan(self) -> dict[str, str]:
        code, out, err = await anyio.to_thread.run_sync(lambda: self.cli("plan", "--json"))
        assert code in (0, 1), err
        return {a["agent_id"]: a["action"] for a in json.loads(out)["actions"]}


@pytest.mark.parametrize("mode", ["password", "appservice"])
@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_plan_lists_what_the_next_sync_does(
    scenario: Callable[[World], Awaitable[None]], mode: str, sync_harness: SyncHarness
) -> None:
    if mode == "appservice":
        sync_harness.use_appservice()
    world = PlanCheckingWorld(sync_harness)
    await scenario(world)
    assert world.mismatches == []
