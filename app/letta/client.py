"""`LettaClient`: the few Letta calls the sync needs, over the shared transport."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from app.errors import LettaError, MalformedResponse, describe_non_json
from app.http.calls import (
    ApiCall,
    JsonApi,
    Pacing,
    is_redirect,
    redirect_target,
    retry_after_seconds,
)
from app.http.paths import segment
from app.http.retry import RetryPolicy
from app.http.transport import Response, Transport
from app.letta.directory import LettaDirectory
from app.letta.listing import AGENTS_PATH, BY_LAST_CHANGE, LEAN_LISTING, Walk
from app.letta.types import Agent, AgentList, LettaMessage, parse_date

log = logging.getLogger(__name__)

# Letta 0.16.8 serves the list at the trailing-slash route (listing.AGENTS_PATH); `/v1/agents`
# is a 307 to it, and following redirects is unsafe (behind a TLS proxy the location may name
# http://).
COUNT_PATH = "/v1/agents/count"
# 0.16.8 has no cap on `limit`; a page of this many lean agents is about 3 MB (6.5 KB each).
# benchmarks/letta_tier.py measured the choice (see benchmarks/results.md).
DEFAULT_PAGE_SIZE = 500
# A steady sync's changes are few: a small first page, more pages when there are more.
CHANGES_PAGE_SIZE = 50
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

    async def list_agents(
        self, page_size: int = DEFAULT_PAGE_SIZE, directory: LettaDirectory | None = None
    ) -> AgentList:
        """Every agent, lean (no relationships), checked against Letta's own count.

        With a `directory` kept from earlier syncs, only what changed since is asked for (see
        `LettaDirectory`). A listing that cannot be proven whole says why in
        `AgentList.incomplete`: callers must then not take an agent it lacks for a removed one.
        """
        if directory is not None:
            changed = await self._changed_since(directory, page_size)
            if changed is not None:
                return changed
        listing = AgentList(())
        for _ in range(LISTING_ATTEMPTS):
            # The newest change before the walk: one made while it runs is newer, and the
            # next sync's walk of changes finds it even where this walk passed it by.
            start = await self.latest_change() if directory is not None else None
            expected = await self.count_agents()
            walk = await Walk(expected, page_size).run(self._get)
            listing = directory.record_full(walk, start) if directory else walk.result()
            if listing.incomplete is None:
                return listing
            log.warning("Letta agent listing incomplete: %s", listing.incomplete)
        return listing

    async def _changed_since(self, directory: LettaDirectory, page_size: int) -> AgentList | None:
        """The directory's list with Letta's changes, or None when it cannot be proven whole."""
        since = directory.since()
        if since is None:
            return None
        expected = await self.count_agents()
        if expected is None:
            return None  # a server without a count: nothing proves what the changes leave out
        walk = await Walk(expected, min(page_size, CHANGES_PAGE_SIZE), since).run(self._get)
        merged = directory.merge(walk, expected)
        if merged is None:
            log.info("Letta's count does not add up with the changes: listing every agent")
        return merged

    async def latest_change(self) -> datetime | None:
        """Letta's newest change: the `updated_at` of the agent changed last, None if unknown."""
        data = await self._get(AGENTS_PATH, {"limit": "1", **LEAN_LISTING, **BY_LAST_CHANGE})
        records = data.get("data") if isinstance(data, dict) else data
        first = records[0] if isinstance(records, list) and records else None
        return parse_date(first.get("updated_at")) if isinstance(first, dict) else None

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
