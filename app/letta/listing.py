"""Walking Letta's agent pages: the whole list, or only what changed since a moment.

A walk follows the `after` cursor. It proves itself whole, or says why it is not: Letta 0.16.8
answers a cursor naming an agent deleted meanwhile with the first page again, and a server may
cap `limit` below ours, so only an empty page, `has_more: false`, or a short page that reaches
Letta's count ends it.

A walk `since` a moment asks for the agents by `updated_at`, newest first, and stops at the
first one older than that moment: Letta sets `updated_at` on every change to an agent (a
rename, a message), so what it leaves out did not change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.errors import LettaError, MalformedResponse
from app.letta.types import Agent, AgentList, parse_date

AGENTS_PATH = "/v1/agents/"
# Without relationships (tools, sources, memory blocks) an agent is 6.5 KB instead of 15-28 KB.
# 0.16.8 loads every relationship unless this legacy parameter is given; newer servers ignore
# it and include none unless asked (`include=`).
LEAN_LISTING = {"include_relationships": ""}
BY_LAST_CHANGE = {"order_by": "updated_at", "order": "desc"}
# Far beyond any real deployment; stops a server that invents cursors forever.
MAX_PAGES = 10_000

Get = Callable[[str, dict[str, str]], Awaitable[Any]]


@dataclass
class Walk:
    """One walk over the agent pages: what it has seen, and whether it can prove it whole."""

    expected: int | None
    page_size: int
    since: datetime | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    cursor: str | None = None
    pages: int = 0
    incomplete: str | None = None
    # The first record's `updated_at`: for a walk `since` a moment, Letta's newest change.
    head: datetime | None = None
    # False once a record had no `updated_at`: no walk `since` a moment can trust the list.
    dated: bool = True

    async def run(self, get: Get) -> Walk:
        while self.pages < MAX_PAGES:
            query = {**self.query(), **({"after": self.cursor} if self.cursor else {})}
            try:
                data = await get(AGENTS_PATH, query)
                records = _agent_records(data)
            except MalformedResponse as exc:
                if self.pages == 0:
                    raise  # the very first page: probably not Letta at all
                # A bad page in the middle is a Letta fault, not a wrong URL.
                raise LettaError(200, f"agent list page {self.pages + 1}: {exc.problem}") from exc
            if self.take(records, no_more=isinstance(data, dict) and data.get("has_more") is False):
                return self
        self.incomplete = f"the listing stopped after {MAX_PAGES} pages"
        return self

    def query(self) -> dict[str, str]:
        order = BY_LAST_CHANGE if self.since is not None else {}
        return {"limit": str(self.page_size), **LEAN_LISTING, **order}

    def take(self, records: list[Any], *, no_more: bool) -> bool:
        """Add one page; True when the walk is over."""
        self.pages += 1
        new_ids = _new_record_ids(records, self.seen_ids)
        _collect(records, self.agents, self.invalid)
        reached_older = self._note_dates(records)
        if not records or no_more or reached_older:
            return True
        last_id = _last_id(records)
        if not new_ids or last_id is None or last_id == self.cursor:
            # Letta 0.16.8 ignores an `after` naming an agent deleted meanwhile and answers
            # the first page again: what lies past the cursor was never seen.
            self.incomplete = f"page {self.pages} repeated agents already listed"
            return True
        if self._short_page_ends_the_count(len(records)):
            return True
        self.cursor = last_id
        return False

    def _note_dates(self, records: list[Any]) -> bool:
        """True when a walk `since` a moment reached an agent changed before it."""
        reached_older = False
        for record in records:
            changed = parse_date(record.get("updated_at")) if isinstance(record, dict) else None
            if changed is None:
                self.dated = False
                continue
            if self.head is None and self.pages == 1:
                self.head = changed
            reached_older = reached_older or (self.since is not None and changed < self.since)
        return reached_older

    def _short_page_ends_the_count(self, size: int) -> bool:
        """A short page that reaches Letta's count ends the walk without an empty page.

        Either alone is not enough: a server may cap `limit` below ours, and an agent created
        after the count was read makes the count too low.
        """
        reached = self.expected is not None and len(self.seen_ids) >= self.expected
        return size < self.page_size and reached

    def result(self) -> AgentList:
        incomplete = self.incomplete
        short = self.since is None and self.expected is not None
        if incomplete is None and short and len(self.seen_ids) < (self.expected or 0):
            incomplete = f"Letta counts {self.expected} agents but listed {len(self.seen_ids)}"
        return AgentList(
            tuple(self.agents.values()),
            tuple(self.invalid),
            self.pages,
            frozenset(self.seen_ids),
            incomplete,
        )


def _agent_records(data: Any) -> list[Any]:
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list):
        raise MalformedResponse(200, "agents: expected a list or an object with 'data'")
    return data


def _new_record_ids(records: list[Any], seen: set[str]) -> list[str]:
    """Ids not seen before, valid agents or not: a page of unusable records still advances."""
    ids = [r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)]
    new: list[str] = [record_id for record_id in ids if record_id not in seen]
    seen.update(new)
    return new


def _collect(records: list[Any], agents: dict[str, Agent], invalid: list[str]) -> None:
    for record in records:
        parsed = Agent.parse(record)
        if isinstance(parsed, str):
            invalid.append(parsed)
        elif parsed.id not in agents:
            agents[parsed.id] = parsed


def _last_id(records: list[Any]) -> str | None:
    """The cursor for the next page: the last record that has an id."""
    for record in reversed(records):
        value = record.get("id") if isinstance(record, dict) else None
        if isinstance(value, str):
            return value
    return None
