"""`LettaClient`: the few Letta calls the sync needs, over the shared transport."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.errors import LettaError, MalformedResponse, describe_non_json
from app.http import ApiCall, JsonApi, Pacing, is_redirect, redirect_target, retry_after_seconds
from app.letta.types import Agent, AgentList, LettaMessage
from app.paths import segment
from app.retry import RetryPolicy
from app.transport import Response, Transport

log = logging.getLogger(__name__)

# Letta 0.16.8 serves the list at the trailing-slash route; `/v1/agents` is a 307 to it, and
# following redirects is unsafe (behind a TLS proxy the location may name http://).
AGENTS_PATH = "/v1/agents/"
COUNT_PATH = "/v1/agents/count"
# 0.16.8 has no cap on `limit`; a page of this many lean agents is about 3 MB (6.5 KB each).
# benchmarks/letta_tier.py measured the choice (see benchmarks/results.md).
DEFAULT_PAGE_SIZE = 500
# Far beyond any real deployment; stops a server that invents cursors forever.
MAX_PAGES = 10_000
# Without relationships (tools, sources, memory blocks) an agent is 6.5 KB instead of 15-28 KB.
# 0.16.8 loads every relationship unless this legacy parameter is given; newer servers ignore
# it and include none unless asked (`include=`).
LEAN_LISTING = {"include_relationships": ""}
# A walk that a deleted cursor sent back to the first page is tried once more from the start.
LISTING_ATTEMPTS = 2


def letta_error_from(response: Response) -> LettaError:
    detail = _detail(response)
    error = LettaError(response.status, detail, response.content)
    error.retry_after = retry_after_seconds(response)
    return error


def _detail(response: Response) -> str:
    if is_redirect(response.status):
        return f"redirected to {redirect_target(response)}; redirects are not followed"
    try:
        data = response.json()
    except MalformedResponse:
        return describe_non_json(response.content)
    if isinstance(data, dict) and data.get("detail") is not None:
        return str(data["detail"])[:200]
    return str(data)[:200]


class LettaClient:
    def __init__(self, http: JsonApi, token: str | None = None) -> None:
        self.http = http
        self._token = token

    @classmethod
    def connect(
        cls,
        transport: Transport,
        base_url: str,
        token: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        pacing: Pacing | None = None,
    ) -> LettaClient:
        return cls(
            JsonApi(transport, base_url, letta_error_from, policy=policy, pacing=pacing), token
        )

    def __repr__(self) -> str:
        return f"LettaClient({self.http.base_url!r}, has_token={self._token is not None})"

    async def _get(self, path: str, query: dict[str, str] | None = None) -> Any:
        return await self.http.call(ApiCall("GET", path, query=query or {}), self._token)

    async def list_agents(self, page_size: int = DEFAULT_PAGE_SIZE) -> AgentList:
        """Every agent, lean (no relationships), checked against Letta's own count.

        A listing that cannot be proven whole says why in `AgentList.incomplete`: callers must
        then not take an agent it lacks for a removed one.
        """
        listing = AgentList(())
        for _ in range(LISTING_ATTEMPTS):
            expected = await self.count_agents()
            listing = await self._walk(page_size, expected)
            if listing.incomplete is None:
                return listing
            log.warning("Letta agent listing incomplete: %s", listing.incomplete)
        return listing

    async def count_agents(self) -> int | None:
        """Letta's total (0.16.8 has `/v1/agents/count`), or None where the server has none."""
        try:
            data = await self._get(COUNT_PATH)
        except LettaError as exc:
            # Without the route the path names an agent: 404, or 422 for a malformed id.
            if exc.status in (404, 405, 422):
                return None
            raise
        return data if isinstance(data, int) and not isinstance(data, bool) else None

    async def _walk(self, page_size: int, expected: int | None) -> AgentList:
        walk = _Walk(expected, page_size)
        while walk.pages < MAX_PAGES:
            try:
                data = await self._get(AGENTS_PATH, _page_query(page_size, walk.cursor))
                records = _agent_records(data)
            except MalformedResponse as exc:
                if walk.pages == 0:
                    raise  # the very first page: probably not Letta at all
                # A bad page in the middle is a Letta fault, not a wrong URL.
                raise LettaError(200, f"agent list page {walk.pages + 1}: {exc.problem}") from exc
            if walk.take(records, no_more=isinstance(data, dict) and data.get("has_more") is False):
                break
        else:
            walk.incomplete = f"the listing stopped after {MAX_PAGES} pages"
        return walk.result()

    async def get_agent(self, agent_id: str) -> Agent:
        parsed = Agent.parse(await self._get(f"/v1/agents/{segment(agent_id)}"))
        if isinstance(parsed, str):
            raise MalformedResponse(200, parsed)
        return parsed

    async def message_page(
        self, agent_id: str, limit: int, before: str | None = None
    ) -> list[LettaMessage]:
        """The `limit` stored messages before `before` (else the newest), oldest first.

        Letta's `limit` counts stored messages, and one stored message (a step) may list as
        several records (reasoning, then the answer) or as none (a `send_message` return).
        """
        query = {"limit": str(limit), "order": "desc"}
        if before is not None:
            query["before"] = before
        data = await self._get(f"/v1/agents/{segment(agent_id)}/messages", query)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise MalformedResponse(200, "messages: expected a list")
        messages = [message for message in map(LettaMessage.parse, data) if message is not None]
        return chronological(messages)


@dataclass
class _Walk:
    """One walk over the agent pages: what it has seen, and whether it can prove it whole."""

    expected: int | None
    page_size: int
    agents: dict[str, Agent] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    cursor: str | None = None
    pages: int = 0
    incomplete: str | None = None

    def take(self, records: list[Any], *, no_more: bool) -> bool:
        """Add one page; True when the walk is over."""
        self.pages += 1
        new_ids = _new_record_ids(records, self.seen_ids)
        _collect(records, self.agents, self.invalid)
        if not records or no_more:
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

    def _short_page_ends_the_count(self, size: int) -> bool:
        """A short page that reaches Letta's count ends the walk without an empty page.

        Either alone is not enough: a server may cap `limit` below ours, and an agent created
        after the count was read makes the count too low.
        """
        reached = self.expected is not None and len(self.seen_ids) >= self.expected
        return size < self.page_size and reached

    def result(self) -> AgentList:
        incomplete = self.incomplete
        if incomplete is None and self.expected is not None and len(self.seen_ids) < self.expected:
            incomplete = f"Letta counts {self.expected} agents but listed {len(self.seen_ids)}"
        return AgentList(
            tuple(self.agents.values()),
            tuple(self.invalid),
            self.pages,
            frozenset(self.seen_ids),
            incomplete,
        )


def _page_query(page_size: int, cursor: str | None) -> dict[str, str]:
    query = {"limit": str(page_size), **LEAN_LISTING}
    if cursor is not None:
        query["after"] = cursor
    return query


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


def chronological(messages: list[LettaMessage]) -> list[LettaMessage]:
    """`messages` oldest first.

    Letta 0.16.8 answers `order=desc` with the newest messages oldest first; a server that
    lists them newest first is recognised by its dates. Dates have one-second resolution, so
    records of one second keep the server's order.
    """
    dates = [message.date for message in messages if message.date is not None]
    if len(dates) >= 2 and dates[0] > dates[-1]:
        return list(reversed(messages))
    return messages
