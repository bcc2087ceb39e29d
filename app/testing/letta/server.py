"""A stateful in-memory Letta server: agents and their messages under ``/v1``.

Core: ``FakeLetta.handle(FakeRequest) -> FakeResponse`` (no httpx). Adapter:
``FakeLetta.mount(router)`` registers one named respx route per endpoint.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.fake_routing import Endpoint, RoutedFake, RouteHandler

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
_BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
_DEFAULT_AGENT_LIMIT = 50
_DEFAULT_MESSAGE_LIMIT = 100
_AGENT = "/v1/agents/(?P<agent_id>[^/]+)"


@dataclass
class FakeMessage:
    id: str
    message_type: str
    content: MessageContent
    date: datetime
    tool_name: str = "tool"

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "date": self.date.isoformat(),
            "message_type": self.message_type,
        }
        if self.message_type == "tool_call_message":
            arguments = self.content if isinstance(self.content, str) else json.dumps(self.content)
            body["tool_call"] = {
                "name": self.tool_name,
                "arguments": arguments,
                "tool_call_id": f"call-{self.id}",
            }
        elif self.message_type == "tool_return_message":
            body["tool_return"] = _text(self.content)
            body["status"] = "success"
        else:
            body["content"] = self.content
            if self.message_type == "reasoning_message":
                body["reasoning"] = _text(self.content)
        return body


@dataclass
class FakeAgent:
    id: str
    name: str
    created_at: datetime
    messages: list[FakeMessage] = field(default_factory=list)

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "description": None,
            "tags": [],
        }


def _text(content: MessageContent) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content)


def _not_found() -> FakeResponse:
    return FakeResponse(404, {"detail": "Agent not found"})


def _int_query(request: FakeRequest, name: str, default: int) -> int | FakeResponse:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        detail = [{"loc": ["query", name], "msg": "Input should be a valid integer"}]
        return FakeResponse(422, {"detail": detail})


class FakeLetta(RoutedFake):
    """In-memory Letta; ``shape`` picks a bare list or ``{"data", "has_more"}`` agent pages.

    With ``repeat_last_page=True`` a cursor past the end returns the last non-empty page again
    (with ``has_more: true``), like a buggy server, to exercise loop guards.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8283",
        shape: Literal["list", "data"] = "list",
        token: str | None = None,
        repeat_last_page: bool = False,
    ) -> None:
        if shape not in ("list", "data"):
            raise ValueError(f"shape must be 'list' or 'data', not {shape!r}")
        self.shape = shape
        self.token = token
        self.repeat_last_page = repeat_last_page
        self._agents: dict[str, FakeAgent] = {}
        self._expired: set[str] = set()
        self._ticks = 0
        endpoints = [
            Endpoint("list_agents", "GET", "/v1/agents/?", self._guard(self._list_agents)),
            Endpoint("get_agent", "GET", _AGENT + "/?", self._guard(self._get_agent)),
            Endpoint(
                "list_messages",
                "GET",
                _AGENT + "/messages/?",
                self._guard(self._list_messages),
            ),
        ]
        super().__init__(base_url, endpoints)

    # -- state changes (no HTTP) ----------------------------------------------------------

    def add_agent(self, name: str, agent_id: str | None = None) -> str:
        agent_id = agent_id or f"agent-{uuid.uuid4()}"
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id} already exists")
        self._agents[agent_id] = FakeAgent(agent_id, name, self._now())
        return agent_id

    def rename(self, agent_id: str, name: str) -> None:
        self._agents[agent_id].name = name

    def remove(self, agent_id: str) -> None:
        del self._agents[agent_id]

    def add_message(
        self,
        agent_id: str,
        message_type: str,
        content: MessageContent,
        date: datetime | None = None,
        *,
        tool_name: str = "tool",
    ) -> str:
        """Append a message (chronological order is the order of calls); returns its id."""
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"unknown message_type {message_type!r}")
        message = FakeMessage(
            f"message-{uuid.uuid4()}", message_type, content, date or self._now(), tool_name
        )
        self._agents[agent_id].messages.append(message)
        return message.id

    def agents(self) -> list[FakeAgent]:
        return list(self._agents.values())

    def agent(self, agent_id: str) -> FakeAgent:
        return self._agents[agent_id]

    def expire_token(self, token: str) -> None:
        """From now on ``token`` answers 401 like a missing one."""
        self._expired.add(token)

    # -- core -----------------------------------------------------------------------------

    def unrecognized(self, request: FakeRequest, method_mismatch: bool) -> FakeResponse:
        if method_mismatch:
            return FakeResponse(405, {"detail": "Method Not Allowed"})
        return FakeResponse(404, {"detail": "Not Found"})

    def _now(self) -> datetime:
        self._ticks += 1
        return _BASE_TIME + timedelta(seconds=self._ticks)

    def _guard(self, handler: RouteHandler) -> RouteHandler:
        def run(request: FakeRequest, params: dict[str, str]) -> FakeResponse:
            if self.token is not None:
                given = request.bearer_token()
                if given != self.token or given in self._expired:
                    return FakeResponse(401, {"detail": "Unauthorized"})
            return handler(request, params)

        return run

    def _agent_page(
        self, name: str | None, after: str | None, limit: int
    ) -> tuple[list[FakeAgent], bool]:
        agents = [a for a in self._agents.values() if name is None or a.name == name]
        start = 0
        if after is not None:
            ids = [agent.id for agent in agents]
            start = ids.index(after) + 1 if after in ids else len(agents)
        page = agents[start : start + limit]
        has_more = start + limit < len(agents)
        if not page and self.repeat_last_page and agents and limit > 0:
            return agents[-limit:], True
        return page, has_more

    def _list_agents(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        limit = _int_query(request, "limit", _DEFAULT_AGENT_LIMIT)
        if isinstance(limit, FakeResponse):
            return limit
        query = request.query
        page, has_more = self._agent_page(query.get("name"), query.get("after"), max(limit, 0))
        items = [agent.to_json() for agent in page]
        if self.shape == "data":
            return FakeResponse(200, {"data": items, "has_more": has_more})
        return FakeResponse(200, items)

    def _get_agent(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        agent = self._agents.get(params["agent_id"])
        return _not_found() if agent is None else FakeResponse(200, agent.to_json())

    def _list_messages(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        agent = self._agents.get(params["agent_id"])
        if agent is None:
            return _not_found()
        limit = _int_query(request, "limit", _DEFAULT_MESSAGE_LIMIT)
        if isinstance(limit, FakeResponse):
            return limit
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            detail = [{"loc": ["query", "order"], "msg": "Input should be 'asc' or 'desc'"}]
            return FakeResponse(422, {"detail": detail})
        ordered = agent.messages if order == "asc" else list(reversed(agent.messages))
        return FakeResponse(200, [message.to_json() for message in ordered[: max(limit, 0)]])
