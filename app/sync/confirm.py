"""A sync reports what the homeserver holds, not what it answered: the state it wrote into
agent rooms is read back, with one more `/sync` of the admin's view, only when it wrote some.

A write answered 200 that the room does not hold (a proxy that answers for the homeserver, a
change made over it at once) fails its agent with the reason, and leaves the lists of what
was renamed, repaired or migrated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app.errors import SyncError
from app.matrix.view import HomeserverView
from app.sync.report import SyncReport

log = logging.getLogger(__name__)


class WriteNotHeld(SyncError):
    """The homeserver accepted a state write that its rooms do not show."""


@dataclass(frozen=True)
class StateWrite:
    agent_id: str
    agent_name: str
    step: str
    room_id: str
    event_type: str
    state_key: str
    content: dict[str, Any]


def unheld(view: HomeserverView, writes: list[StateWrite]) -> list[StateWrite]:
    """The writes the view does not show (rooms the admin is not in cannot be checked)."""
    missing = []
    for write in writes:
        room = view.room(write.room_id)
        if room is None:
            continue
        held = room.content(write.event_type, write.state_key) or {}
        if held != write.content:
            missing.append(write)
    return missing


def report_unheld(report: SyncReport, missing: list[StateWrite]) -> None:
    for write in missing:
        agent = write.agent_id
        for listed in (report.renamed, report.repaired, report.migrated):
            while agent in listed:
                listed.remove(agent)
        report.actions.pop(agent, None)
        error = WriteNotHeld(
            f"the homeserver accepted {write.event_type} in room {write.room_id} but the room "
            "does not hold it: is something in front of the homeserver answering for it?"
        )
        log.warning("agent %s: %s", agent, error)
        if not any(failure.agent_id == agent for failure in report.failures):
            report.fail(agent, write.agent_name, write.step, error)
