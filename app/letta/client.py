"""`LettaClient`: the few Letta calls the sync needs, over the shared transport."""

from __future__ import annotations

import logging
from typing import Any

from app.errors import LettaError, MalformedResponse, describe_non_json
from app.http import ApiCall, JsonApi, Pacing, retry_after_seconds
from app.letta.types import Agent, AgentList, LettaMessage
from app.paths import segment
from app.retry import RetryPolicy
from app.transport import Response, Transport

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
# Far beyond any real deployment; stops a server that invents cursors forever.
MAX_PAGES = 10_000


def letta_error_from(response: Response) -> LettaError:
    detail = _detail(response)
    error = LettaError(response.status, detail, response.content)
    error.retry_after = retry_after_seconds(response)
    return error


def _detail(response: Response) -> str:
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
        """Every agent, following the `after` cursor until an empty or repeated page."""
        agents: dict[str, Agent] = {}
        invalid: list[str] = []
        seen_ids: set[str] = set()
        cursor: str | None = None
        pages = 0
        while pages < MAX_PAGES:
            try:
                data = await self._get("/v1/agents", _page_query(page_size, cursor))
                records = _agent_records(data)
            except MalformedResponse as exc:
                if pages == 0:
                    raise  # the very first page: probably not Letta at all
                # A bad page in the middle is a Letta fault, not a wrong URL.
                raise LettaError(200, f"agent list page {pages + 1}: {exc.problem}") from exc
            pages += 1
            new_ids = _new_record_ids(records, seen_ids)
            _collect(records, agents, invalid)
            last_id = _last_id(records)
            # Only an empty or repeated page ends the list: servers may cap `limit` below ours.
            no_more = isinstance(data, dict) and data.get("has_more") is False
            if no_more or not new_ids or last_id is None or last_id == cursor:
                break
            cursor = last_id
        else:
            log.warning("Letta agent listing stopped after %d pages", MAX_PAGES)
        return AgentList(tuple(agents.values()), tuple(invalid), pages, frozenset(seen_ids))

    async def get_agent(self, agent_id: str) -> Agent:
        parsed = Agent.parse(await self._get(f"/v1/agents/{segment(agent_id)}"))
        if isinstance(parsed, str):
            raise MalformedResponse(200, parsed)
        return parsed

    async def recent_messages(self, agent_id: str, limit: int) -> list[LettaMessage]:
        """The agent's last `limit` messages, oldest first."""
        path = f"/v1/agents/{segment(agent_id)}/messages"
        data = await self._get(path, {"limit": str(limit), "order": "desc"})
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise MalformedResponse(200, "messages: expected a list")
        messages = [message for message in map(LettaMessage.parse, data) if message is not None]
        return _oldest_first(messages)[-limit:] if limit > 0 else []


def _page_query(page_size: int, cursor: str | None) -> dict[str, str]:
    query = {"limit": str(page_size)}
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
    last = records[-1] if records else None
    value = last.get("id") if isinstance(last, dict) else None
    return value if isinstance(value, str) else None


def _oldest_first(messages: list[LettaMessage]) -> list[LettaMessage]:
    if messages and all(message.date is not None for message in messages):
        return sorted(messages, key=lambda message: message.date)  # type: ignore[arg-type,return-value]
    # Without dates, trust that order=desc was honoured and reverse.
    return list(reversed(messages))
