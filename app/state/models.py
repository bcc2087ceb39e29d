"""The records of `agent_user_mappings.json` and `letta_space_config.json`.

Field names are those existing deployments already have. The facts the sync records about an
agent are typed fields, written under the JSON keys they always had (`_FACTS`). Unknown fields
(and a fact whose value has an unexpected type) are kept in `extra` and written back unchanged,
so a file from an older or newer version loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

InvitationStatus = Literal["invited", "joined", "failed"]
# The JSON keys of the typed facts: the files bridges and existing deployments read.
REMOVED_FROM_LETTA = "removed_from_letta"
HISTORY_PENDING = "history_import_pending"
HISTORY_DONE = "history_import_done"
IGNORED_UPGRADE = "ignored_upgrade"
REFUSED_STATE = "state_refused"
HELD = "held_after_failure"

# attribute -> (JSON key, the type its value must have to be read as that fact)
_FACTS: dict[str, tuple[str, type]] = {
    "removed_from_letta": (REMOVED_FROM_LETTA, bool),
    "history_pending": (HISTORY_PENDING, bool),
    "history_done": (HISTORY_DONE, list),
    "ignored_upgrade": (IGNORED_UPGRADE, str),
    "refused_state": (REFUSED_STATE, dict),
    "held": (HELD, dict),
}

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
    # The last sync did not find this agent in Letta (user and room kept).
    removed_from_letta: bool = False
    # A new room still awaits its history import.
    history_pending: bool = False
    # Messages an interrupted import already posted; None when no import is under way.
    history_done: list[str] | None = None
    # A replacement room found not to continue this one: its tombstone is not followed.
    ignored_upgrade: str | None = None
    # State writes the homeserver refused, per account, at the room's current levels.
    refused_state: dict[str, Any] | None = field(default=None, repr=False)
    # The last unfixable failure and when the agent is tried again (`app.sync.backoff`).
    held: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # A fact given in `extra` (as a file holds it) becomes its typed field; the caller's
        # dict is left as it was.
        self.extra = dict(self.extra)
        for attribute, (key, kind) in _FACTS.items():
            value = self.extra.get(key)
            if isinstance(value, kind) and value is not False:
                setattr(self, attribute, self.extra.pop(key))

    def _facts_json(self) -> dict[str, Any]:
        facts = {key: getattr(self, attribute) for attribute, (key, _) in _FACTS.items()}
        return {key: value for key, value in facts.items() if value not in (None, False)}

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
        return {**self.extra, **self._facts_json(), **known}

    def mark_removed_from_letta(self, removed: bool) -> bool:
        """Record whether Letta still lists the agent; True when that changed."""
        if removed == self.removed_from_letta:
            return False
        self.removed_from_letta = removed
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
