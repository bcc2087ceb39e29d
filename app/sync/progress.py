"""Progress hooks, so a terminal can show a bar and a bridge can log however it likes."""

from __future__ import annotations

from typing import Protocol


class SyncProgress(Protocol):
    def started(self, total_agents: int) -> None: ...

    def agent_done(self, agent_id: str, agent_name: str, ok: bool) -> None: ...


class NoProgress:
    def started(self, total_agents: int) -> None:
        return None

    def agent_done(self, agent_id: str, agent_name: str, ok: bool) -> None:
        return None
