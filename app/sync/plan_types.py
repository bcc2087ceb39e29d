"""What `plan` says: plain values, shared by the dry run and what prints it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlannedAction:
    agent_id: str
    agent_name: str
    action: str  # create, blocked, create_room, rename, repair, migrate, ok
    detail: str = ""
    # The writes the sync will make, each as `step: what as account` (app.sync.decide).
    actions: tuple[str, ...] = ()


@dataclass
class SyncPlan:
    space: str  # keep, create, unknown
    matrix_checked: bool
    actions: list[PlannedAction] = field(default_factory=list)
    removed_from_letta: list[str] = field(default_factory=list)
    letta_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def count(self, action: str) -> int:
        return sum(1 for planned in self.actions if planned.action == action)
