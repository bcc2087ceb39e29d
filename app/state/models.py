"""The records of `agent_user_mappings.json` and `letta_space_config.json`.

Field names are those existing deployments already have. Unknown fields are kept in `extra`
and written back unchanged, so a file from an older or newer version loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

InvitationStatus = Literal["invited", "joined", "failed"]
# Extra mapping field: the last sync did not find this agent in Letta (user and room kept).
REMOVED_FROM_LETTA = "removed_from_letta"

_MAPPING_FIELDS = (
    "agent_id",
    "agent_name",
    "matrix_user_id",
    "matrix_password",
    "created",
    "room_id",
    "room_created",
    "invitation_status",
)


@dataclass
class AgentMapping:
    """One Letta agent and its Matrix user and room."""

    agent_id: str
    agent_name: str
    matrix_user_id: str
    matrix_password: str = field(repr=False)
    created: bool = False
    room_id: str | None = None
    room_created: bool = False
    invitation_status: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, agent_id: str, data: dict[str, Any]) -> AgentMapping:
        status = data.get("invitation_status")
        room_id = data.get("room_id")
        return cls(
            agent_id=str(data.get("agent_id") or agent_id),
            agent_name=str(data.get("agent_name") or ""),
            matrix_user_id=str(data.get("matrix_user_id") or ""),
            matrix_password=str(data.get("matrix_password") or ""),
            created=bool(data.get("created", False)),
            room_id=room_id if isinstance(room_id, str) and room_id else None,
            room_created=bool(data.get("room_created", False)),
            invitation_status=dict(status) if isinstance(status, dict) else {},
            extra={key: value for key, value in data.items() if key not in _MAPPING_FIELDS},
        )

    def to_json(self) -> dict[str, Any]:
        known = {
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "matrix_user_id": self.matrix_user_id,
            "matrix_password": self.matrix_password,
            "created": self.created,
            "room_id": self.room_id,
            "room_created": self.room_created,
            "invitation_status": dict(self.invitation_status),
        }
        return {**self.extra, **known}

    @property
    def removed_from_letta(self) -> bool:
        return self.extra.get(REMOVED_FROM_LETTA) is True

    def mark_removed_from_letta(self, removed: bool) -> bool:
        """Record whether Letta still lists the agent; True when that changed."""
        if removed == self.removed_from_letta:
            return False
        if removed:
            self.extra[REMOVED_FROM_LETTA] = True
        else:
            self.extra.pop(REMOVED_FROM_LETTA, None)
        return True

    @property
    def in_order(self) -> bool:
        """User and room created, and no tracked join failed (invited people may not have
        accepted yet; that is theirs to do)."""
        no_failure = all(state != "failed" for state in self.invitation_status.values())
        return self.created and self.room_created and self.room_id is not None and no_failure


@dataclass
class SpaceConfig:
    """The "Letta Agents" space. `created_at` keeps whatever form the file used."""

    space_id: str | None = None
    created_at: Any = None
    name: str = "Letta Agents"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpaceConfig:
        space_id = data.get("space_id")
        return cls(
            space_id=space_id if isinstance(space_id, str) and space_id else None,
            created_at=data.get("created_at"),
            name=str(data.get("name") or "Letta Agents"),
            extra={k: v for k, v in data.items() if k not in ("space_id", "created_at", "name")},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "space_id": self.space_id,
            "created_at": self.created_at,
            "name": self.name,
        }
