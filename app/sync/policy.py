"""What the per-agent steps are told by the configuration, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentPolicy:
    """How each agent is synced; the service builds it from `SyncConfig` once per sync (the
    defaults are the configuration's, in one place)."""

    # People every agent room invites, besides the admin and the bot.
    invite_users: tuple[str, ...]
    # Messages of an agent's history posted into a new room; 0 imports none.
    history_import_limit: int
    # The room's name, from `{name}` and `{agent_id}`.
    room_name_template: str
    # Agents synced at once (lowered by the homeserver's pacing).
    sync_concurrency: int
    # Try agents held back after failures now, not when their hold ends.
    retry_failed: bool
    # The longest hold, in seconds, after repeated failures.
    failed_retry_max: float
