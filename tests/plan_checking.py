"""A world whose every sync is preceded by `plan --json`, recording where they disagree.

The planned action of every agent is compared with where the sync's report lists it. Syncs
with an injected fault (`wrap`) or settings `plan` cannot be given are left out: the plan
describes the homeserver, not a fault yet to happen. One thing a plan cannot know is let
through: whether a login the sync must make (an agent whose stored token the homeserver
refuses) will be refused too, since a login is a write (a new device).
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from app import SyncReport

from worlds import World, Wrap

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


class PlanChecking:
    """Wraps a world (fakes or Synapse); everything but `sync` is the world's own."""

    def __init__(self, world: World) -> None:
        self._world = world
        self.mismatches: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world, name)

    async def sync(self, *, wrap: Wrap | None = None, **overrides: Any) -> SyncReport:
        plannable = wrap is None and not overrides
        planned = await self._plan() if plannable else None
        report = await self._world.sync(wrap=wrap, **overrides)
        for agent_id, action in (planned or {}).items():
            done = reported_action(report, agent_id)
            if done != action and not first_refused_login(report, agent_id):
                self.mismatches.append(f"{agent_id}: plan said {action}, sync did {done}")
        return report

    async def _plan(self) -> dict[str, str]:
        world = self._world
        code, out, err = await anyio.to_thread.run_sync(lambda: world.cli("plan", "--json"))
        assert code in (0, 1), err
        return {a["agent_id"]: a["action"] for a in json.loads(out)["actions"]}
