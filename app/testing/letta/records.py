"""What the fake Letta stores, shaped like Letta 0.16.8's records.

An agent's message log is a list of stored messages (`FakeRow`); the list endpoint expands
each into zero or more listed records that share its `id` and differ in `otid`, as Letta's
`Message.to_letta_messages` does: an assistant step lists its reasoning and its answer, and the
return of its `send_message` call lists nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonDict = dict[str, Any]
MessageContent = str | list[JsonDict]

MESSAGE_TYPES = (
    "user_message",
    "assistant_message",
    "tool_call_message",
    "tool_return_message",
    "reasoning_message",
    "system_message",
)
AGENT_ID = re.compile(r"agent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# Letta 0.16.8 answers 500 when an agent is created with one of these in its name.
REFUSED_NAME = re.compile(r"[?.<>]|[\U0001F000-\U0001FAFF\u2600-\u27BF]")
# Sizes measured on 0.16.8 over 300 agents: 6.5 KB an agent without relationships, 15.4 KB
# with them (tools, sources, memory blocks). The filler makes the fake's pages as heavy.
_LEAN_FILLER = 5_600
_RELATIONSHIPS_FILLER = 8_900
_FILLER_TEXT = "You are a helpful agent with persistent memory. " * 400


@dataclass
class FakeRecord:
    message_type: str
    content: MessageContent
    otid: str
    tool_name: str = "tool"

    def to_json(self, row: FakeRow) -> JsonDict:
        body: JsonDict = {
            "id": row.id,
            "date": row.date.replace(microsecond=0).isoformat(),
            "message_type": self.message_type,
            "otid": self.otid,
        }
        if self.message_type == "tool_call_message":
            arguments = self.content if isinstance(self.content, str) else json.dumps(self.content)
            call = {
                "name": self.tool_name,
                "arguments": arguments,
                "tool_call_id": f"call-{row.id}",
            }
            body["tool_call"] = call
        elif self.message_type == "tool_return_message":
            body["tool_return"] = text_of(self.content)
            body["status"] = "success"
        else:
            body["content"] = self.content
            if self.message_type == "reasoning_message":
                body["reasoning"] = text_of(self.content)
        return body


@dataclass
class FakeRow:
    """One stored message: what Letta's `limit` and `before` count and point at."""

    id: str
    date: datetime
    records: list[FakeRecord] = field(default_factory=list)


@dataclass
class FakeAgent:
    id: str
    name: str
    created_at: datetime
    agent_type: str = "letta_v1_agent"
    rows: list[FakeRow] = field(default_factory=list)
    # Letta sets it on every change to the agent: a rename, a message, a new tool.
    updated_at: datetime | None = None

    @property
    def last_change(self) -> datetime:
        return self.updated_at or self.created_at

    def to_json(self, *, relationships: bool = False) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.last_change.isoformat(),
            "agent_type": self.agent_type,
            "description": None,
            "system": _FILLER_TEXT[:_LEAN_FILLER],
            "llm_config": {"model": "letta-free", "context_window": 8192},
            "embedding_config": {"embedding_model": "letta-free", "embedding_dim": 1024},
        }
        if relationships:
            body["tools"] = [{"name": "send_message", "source_code": _FILLER_TEXT[:6_000]}]
            body["memory"] = {"blocks": [{"label": "persona", "value": _FILLER_TEXT[:2_900]}]}
            body["tags"], body["sources"] = [], []
        return body

    def records(self, rows: list[FakeRow]) -> list[JsonDict]:
        return [record.to_json(row) for row in rows for record in row.records]


def new_agent_id() -> str:
    return f"agent-{uuid.uuid4()}"


def new_row_id() -> str:
    return f"message-{uuid.uuid4()}"


def new_otid() -> str:
    return str(uuid.uuid4())


def text_of(content: MessageContent) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content)


def machine_event(kind: str, **fields: str) -> str:
    """A login, heartbeat or system alert as Letta writes it into the user role."""
    return json.dumps({"type": kind, **fields, "time": "2025-01-01 12:00:00 AM UTC+0000"})
