"""Agents that failed for a cause a retry cannot fix are not retried every sync.

Such causes: the agent's login is refused, its account is deactivated, or no account the
library holds has the power a write in its room needs. Each needs a person to act, and every
retry costs requests (a refused login counts against the account's failed-login limit, and
operators read each one as an attack). So the agent is tried again on the next sync, then
after waits that double from a minute up to `FAILED_RETRY_MAX`. In between it costs no
request, and the report lists it as failed, with the cause and the next try. A change to the
agent in Letta (its name) or `sync --retry-failed` tries it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from app.errors import MatrixLoginRefused, MatrixUserDeactivated
from app.matrix.view import HomeserverView
from app.state import AgentMapping
from app.sync.agent_run import AgentDeactivated
from app.sync.power import levels_fingerprint
from app.sync.report import describe
from app.sync.state_writes import StatePowerMissing

FIRST_WAIT = 60.0
UNFIXABLE = (MatrixLoginRefused, MatrixUserDeactivated, AgentDeactivated, StatePowerMissing)


@dataclass(frozen=True)
class Hold:
    step: str
    reason: str
    next_try_at: float

    @property
    def next_try(self) -> str:
        return datetime.fromtimestamp(self.next_try_at, timezone.utc).isoformat(timespec="seconds")


def levels_now(homeserver: HomeserverView | None, mapping: AgentMapping | None) -> str | None:
    """The fingerprint of the power levels of the agent's room, as the view shows it: a hold
    for missing power lifts when they change."""
    room = homeserver.room(mapping.room_id or "") if homeserver and mapping else None
    return levels_fingerprint(room) if room is not None else None


def held(
    mapping: AgentMapping | None, agent_name: str, now: float, levels: str | None = None
) -> Hold | None:
    """The hold on this agent, while it lasts and the agent did not change in Letta."""
    hold = last_hold(mapping, agent_name, levels)
    return hold if hold is not None and now < hold.next_try_at else None


def last_hold(
    mapping: AgentMapping | None, agent_name: str, levels: str | None = None
) -> Hold | None:
    """The agent's last unfixable failure, over or not, unless the agent changed in Letta or
    (a hold for missing power) its room's power levels changed: someone may have fixed it."""
    record = mapping.held if mapping is not None else None
    if not isinstance(record, dict) or record.get("agent_name") != agent_name:
        return None
    if record.get("levels") is not None and record.get("levels") != levels:
        return None
    next_try_at = record.get("next_try_at")
    if not isinstance(next_try_at, (int, float)):
        return None
    return Hold(str(record.get("step")), str(record.get("reason")), float(next_try_at))


def after_run(
    mapping: AgentMapping,
    agent_name: str,
    failure: tuple[str, Exception] | None,
    now: float,
    longest_wait: float,
    levels: str | None = None,
) -> Hold | None:
    """Record the run's outcome in the mapping: the new hold, or None (the hold is gone)."""
    if failure is None or not isinstance(failure[1], UNFIXABLE):
        mapping.held = None
        return None
    step, error = failure
    previous = last_hold(mapping, agent_name, levels) and mapping.held
    failures = previous.get("failures", 0) if isinstance(previous, dict) else 0
    failures = (failures if isinstance(failures, int) else 0) + 1
    wait = 0.0 if failures == 1 else min(FIRST_WAIT * 2 ** (failures - 2), longest_wait)
    hold = Hold(step, describe(error), now + wait)
    mapping.held = {
        "agent_name": agent_name,
        "failures": failures,
        "step": step,
        "reason": hold.reason,
        "next_try_at": hold.next_try_at,
        # Missing power is fixed in the room: a change to its levels lifts the hold.
        "levels": levels if isinstance(error, StatePowerMissing) else None,
    }
    return hold
