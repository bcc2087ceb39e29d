"""The fake Letta's message log: what a test puts in, and the rows a list request reads."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from app.testing.fake_http import FakeResponse
from app.testing.letta.records import (
    MESSAGE_TYPES,
    FakeAgent,
    FakeRecord,
    FakeRow,
    MessageContent,
    machine_event,
    new_otid,
    new_row_id,
)

GREETING = "More human than human is our motto."


class Conversations:
    """Message-log methods of :class:`FakeLetta` (which supplies `agent` and `_now`)."""

    def agent(self, agent_id: str) -> FakeAgent:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def add_message(
        self,
        agent_id: str,
        message_type: str,
        content: MessageContent,
        date: datetime | None = None,
        *,
        tool_name: str = "tool",
    ) -> str:
        """Append one stored message listing as one record; returns its id."""
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"unknown message_type {message_type!r}")
        record = FakeRecord(message_type, content, new_otid(), tool_name)
        return self._append(agent_id, [record], date)

    def converse(self, agent_id: str, question: str, answer: str) -> None:
        """One exchange as a Letta agent stores it: the user's line; one step whose reasoning
        and `send_message` answer list as two records sharing an id; the call's return, which
        lists as nothing. All within one second, as Letta's dates show."""
        moment = self._now()
        self._append(agent_id, [FakeRecord("user_message", question, new_otid())], moment)
        step = [
            FakeRecord("reasoning_message", f"The user said: {question}", new_otid()),
            FakeRecord("assistant_message", answer, new_otid()),
        ]
        self._append(agent_id, step, moment)
        self._append(agent_id, [], moment)

    def add_step(self, agent_id: str, records: list[tuple[str, str]]) -> str:
        """One stored message listing as several records (type, text) that share its id, as a
        step that reasons and calls `send_message` twice does; returns the id."""
        listed = [FakeRecord(kind, text, new_otid()) for kind, text in records]
        return self._append(agent_id, listed, None)

    def add_machine_event(self, agent_id: str, kind: str, **fields: str) -> str:
        """A login, heartbeat or system alert, which Letta stores as a JSON user message."""
        return self.add_message(agent_id, "user_message", machine_event(kind, **fields))

    def add_greeting(self, agent_id: str) -> None:
        """What older agent types (memgpt_agent, ...) start with: a system prompt, a canned
        greeting and a login event."""
        self.add_message(agent_id, "system_message", "You are MemGPT.")
        self.add_message(agent_id, "assistant_message", GREETING)
        self.add_machine_event(agent_id, "login", last_login="Never (first login)")

    def _append(self, agent_id: str, records: list[FakeRecord], date: datetime | None) -> str:
        row = FakeRow(new_row_id(), date or self._now(), records)
        agent = self.agent(agent_id)
        agent.rows.append(row)
        agent.updated_at = max(agent.last_change, row.date)  # Letta records the new message
        return row.id

    def message_rows(
        self, agent: FakeAgent, query: Mapping[str, str], limit: int, order: str
    ) -> list[FakeRow] | FakeResponse:
        """The rows a list request reads, oldest first: `before`/`after` bound them by
        position, and `order=desc` takes the newest `limit` of what is left."""
        rows = agent.rows
        for bound in ("before", "after"):
            cursor = query.get(bound)
            if cursor is None:
                continue
            positions = [index for index, row in enumerate(rows) if row.id == cursor]
            if not positions:
                detail = f"No message found with id '{cursor}' for agent '{agent.id}'."
                return FakeResponse(404, {"detail": detail})
            rows = rows[: positions[0]] if bound == "before" else rows[positions[0] + 1 :]
        if order == "desc":
            return rows[-limit:] if limit else []
        return rows[:limit]
