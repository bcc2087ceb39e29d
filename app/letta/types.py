"""Typed Letta values. Letta data is untrusted: parsing never raises on one bad record."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

CONVERSATION_TYPES = frozenset({"user_message", "assistant_message"})
# What Letta itself writes into the user role: JSON events for the agent, not a person's words.
MACHINE_EVENTS = frozenset({"login", "heartbeat", "system_alert"})


@dataclass(frozen=True)
class Agent:
    id: str
    name: str

    @classmethod
    def parse(cls, data: Any) -> Agent | str:
        """The agent, or a sentence saying why this record is unusable."""
        if not isinstance(data, dict):
            return f"agent record is not an object: {type(data).__name__}"
        agent_id, name = data.get("id"), data.get("name")
        if not isinstance(agent_id, str) or not agent_id.strip():
            return "agent record without an id"
        if not _is_valid_unicode(agent_id):
            return f"agent id {agent_id.encode('utf-8', 'replace')!r} is not valid Unicode"
        if not isinstance(name, str) or not name.strip():
            return f"agent {agent_id!r} has no name"
        return cls(agent_id, _clean(name))


@dataclass(frozen=True)
class AgentList:
    """All agents Letta listed, de-duplicated, plus the records that could not be used.

    `listed_ids` holds every id Letta listed, usable or not: an agent whose record is broken
    still exists and must not be reported as removed. `incomplete` says why the listing cannot
    be proven whole (a cursor that sent the walk back to the first page, a total below Letta's
    count); such a listing proves no agent removed.
    """

    agents: tuple[Agent, ...]
    invalid: tuple[str, ...] = ()
    pages: int = 0
    listed_ids: frozenset[str] = frozenset()
    incomplete: str | None = None

    def listed(self, agent_id: str) -> bool:
        """Whether Letta listed this id (`listed_ids` holds every listed one, when given)."""
        if self.listed_ids:
            return agent_id in self.listed_ids
        return any(agent.id == agent_id for agent in self.agents)

    def missing(self, known_ids: Iterable[str]) -> list[str]:
        """Known agent ids Letta did not list (usable or not); none from an incomplete list."""
        if self.incomplete is not None:
            return []
        listed = {agent.id for agent in self.agents} | self.listed_ids
        return [agent_id for agent_id in known_ids if agent_id not in listed]

    def by_id(self) -> dict[str, Agent]:
        return {agent.id: agent for agent in self.agents}


@dataclass(frozen=True)
class LettaMessage:
    """One listed record. Records of one stored message (a step's reasoning and answer) share
    its `id`; `otid` tells them apart."""

    id: str | None
    message_type: str
    text: str
    date: datetime | None = field(default=None, compare=False)
    otid: str | None = None

    @property
    def is_conversation(self) -> bool:
        return self.message_type in CONVERSATION_TYPES and not self.is_machine_event

    @property
    def is_machine_event(self) -> bool:
        """A login, heartbeat or system alert Letta sent its agent as a JSON user message."""
        if self.message_type != "user_message" or not self.text.lstrip().startswith("{"):
            return False
        try:
            data = json.loads(self.text)
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("type") in MACHINE_EVENTS

    @property
    def key(self) -> str | None:
        """What names this record uniquely: its otid, else its id with its type."""
        if self.otid:
            return self.otid
        return f"{self.id}:{self.message_type}" if self.id else None

    @classmethod
    def parse(cls, data: Any) -> LettaMessage | None:
        if not isinstance(data, dict) or not isinstance(data.get("message_type"), str):
            return None
        message_id, otid = data.get("id"), data.get("otid")
        return cls(
            message_id if isinstance(message_id, str) else None,
            data["message_type"],
            _clean(content_text(data.get("content"))),
            parse_date(data.get("date")),
            otid if isinstance(otid, str) else None,
        )


def _clean(text: str) -> str:
    """A lone surrogate is valid JSON but cannot be sent as UTF-8: replace it."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def content_text(content: Any) -> str:
    """Letta content is a string or a list of parts; text parts are joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [_part_text(part) for part in content]
        return "\n".join(part for part in parts if part)
    return ""


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return str(part["text"])
    return ""


def parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Naive and aware datetimes cannot be compared; Letta's naive dates are UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
