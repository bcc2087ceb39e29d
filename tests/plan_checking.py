"""A world whose every sync is preceded by `plan --json`, recording where they disagree.

The planned action of every agent is compared with where the sync's report lists it. `plan`
gets the sync's settings (`invite_users`, `history_import_limit`) through its environment.
Syncs with an injected fault (`wrap`) or with `retry_failed` are left out: the plan describes
the homeserver, not a fault yet to happen, and has no `--retry-failed`.

Two things a plan cannot know are let through, each named: whether a login the sync must
make (an agent whose stored token the homeserver refuses) will be refused too, since a login
is a write (a new device); and what the replacement of an upgraded room allows, since the
admin reads that room only once the sync has followed it there.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from app import SyncReport

from worlds import World, Wrap

# The sync settings `plan` is given, as the environment variables it reads.
PLAN_SETTINGS = {
    "invite_users": "MATRIX_INVITE_USERS",
    "history_import_limit": "HISTORY_IMPORT_LIMIT",
}
# Where a report lists an agent, by the action `plan` gives it.
REPORTED = {
    "create": "users_created",
    "create_room": "rooms_created",
    "rename": "renamed",
    "repair": "repaired",
    "migrate": "migrated",
}
# Plan actions whose writes the plan lists one by one: a room to create is made whole by the
# sync (its writes are part of createRoom).
WRITES_KNOWN = ("ok", "rename", "repair", "migrate", "blocked")


def reported_action(report: SyncReport, agent_id: str) -> str:
    if any(failure.agent_id == agent_id for failure in report.failures):
        return "blocked"
    for action, listed in REPORTED.items():
        if agent_id in getattr(report, listed):
            return action
    return "ok"


def refused_login(report: SyncReport, agent_id: str) -> bool:
    return any(
        f.agent_id == agent_id and f.reason.startswith("MatrixLoginRefused")
        for f in report.failures
    )


class PlanChecking:
    """Wraps a world (fakes or Synapse); everything but `sync` is the world's own."""

    def __init__(self, world: World) -> None:
        self._world = world
        self.mismatches: list[str] = []
        self.plans = 0  # how many syncs were checked: a scenario must not skip them all
        self.syncs = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world, name)

    async def sync(self, *, wrap: Wrap | None = None, **overrides: Any) -> SyncReport:
        plannable = wrap is None and not set(overrides) - set(PLAN_SETTINGS) - {"letta_page_size"}
        planned = await self._plan(overrides) if plannable else None
        self.plans += planned is not None
        self.syncs += 1
        report = await self._world.sync(wrap=wrap, **overrides)
        for agent_id, (action, detail, writes) in (planned or {}).items():
            done = reported_action(report, agent_id)
            upgraded = "room upgraded to" in detail
            unknowable = refused_login(report, agent_id) or (upgraded and done == "blocked")
            if done != action and not unknowable:
                self.mismatches.append(f"{agent_id}: plan said {action}, sync did {done}")
            # Each write, and who makes it: the sync carries out the plan's own list.
            made = report.actions.get(agent_id, [])
            if action == "blocked":  # the writes some account may make are still made
                writes = [write for write in writes if not write.endswith(" as nobody")]
            if action in WRITES_KNOWN and done == action and not upgraded and made != writes:
                self.mismatches.append(f"{agent_id}: plan listed {writes}, sync made {made}")
        return report

    async def _plan(self, overrides: dict[str, Any]) -> dict[str, tuple[str, str, list[str]]]:
        world = self._world
        env = {
            PLAN_SETTINGS[name]: ",".join(value) if isinstance(value, tuple) else str(value)
            for name, value in overrides.items()
            if name in PLAN_SETTINGS
        }
        code, out, err = await anyio.to_thread.run_sync(lambda: world.cli("plan", "--json", **env))
        assert code in (0, 1), err
        return {
            a["agent_id"]: (a["action"], a["detail"], a["actions"])
            for a in json.loads(out)["actions"]
        }
