"""A stateful in-memory Letta server under ``/v1``, faithful to Letta 0.16.8.

Core: ``FakeLetta.handle(FakeRequest) -> FakeResponse`` (no httpx). Adapter:
``FakeLetta.mount(router)`` registers one named respx route per endpoint. What it copies of
0.16.8 (tests/letta_contract_checks.py runs the same checks on the real server):

- the list lives at ``/v1/agents/``; ``/v1/agents`` answers 307 with an empty body;
- a bare JSON list, newest first, no ``has_more``, no cap on ``limit``; an ``after`` naming no
  agent (one deleted meanwhile) is ignored, so the first page comes back;
- without ``include_relationships`` every relationship is listed (15 KB an agent), with it
  empty none (6.5 KB); ``/v1/agents/count`` gives the total;
- agent ids are ``agent-<uuid4>``: any other id is 422, an unknown one 404;
- names with emoji, ``?``, ``.``, ``<`` or ``>`` are refused at creation (500); duplicates pass;
- messages: ``limit`` and ``before`` count stored messages, ``order=desc`` gives the newest
  ``limit`` of them oldest first, records of one step share an ``id``, dates have whole seconds.

``version="1.x"`` models the newer servers the ``letta-client`` SDK (1.12) describes instead:
lean listings unless asked (``include=``), and no count route. Their message order is 0.16.8's:
the SDK documents ``order=desc`` as "newest first", exactly as 0.16.8 does, whose answer is the
newest messages oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Literal

from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.fake_routing import Endpoint, RoutedFake, RouteHandler
from app.testing.letta.conversations import Conversations
from app.testing.letta.records import (
    AGENT_ID,
    REFUSED_NAME,
    FakeAgent,
    new_agent_id,
)

_BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
_DEFAULT_AGENT_LIMIT = 50
_AGENT = "/v1/agents/(?P<agent_id>[^/]+)"


def _int_query(request: FakeRequest, name: str, default: int) -> int | FakeResponse:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        return _invalid("query", name, "Input should be a valid integer")


def _invalid(where: str, name: str, message: str) -> FakeResponse:
    return FakeResponse(422, {"detail": [{"loc": [where, name], "msg": message}]})


class FakeLetta(Conversations, RoutedFake):
    """In-memory Letta; ``shape="data"`` wraps agent pages as ``{"data", "has_more"}`` (as
    some proxies and older servers did).

    With ``repeat_last_page=True`` a cursor past the end returns the last non-empty page again
    (with ``has_more: true``), like a buggy server, to exercise loop guards.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8283",
        shape: Literal["list", "data"] = "list",
        token: str | None = None,
        repeat_last_page: bool = False,
        version: Literal["0.16.8", "1.x"] = "0.16.8",
    ) -> None:
        if shape not in ("list", "data"):
            raise ValueError(f"shape must be 'list' or 'data', not {shape!r}")
        self.shape, self.token, self.version = shape, token, version
        self.repeat_last_page = repeat_last_page
        self._agents: dict[str, FakeAgent] = {}
        self._expired: set[str] = set()
        self._ticks = 0
        # Agent records sent by the list endpoint, for tests of what a listing costs.
        self.records_listed = 0
        endpoints = [
            Endpoint("redirect_list", "GET", "/v1/agents", self._redirect_to_slash),
            Endpoint("list_agents", "GET", "/v1/agents/", self._guard(self._list_agents)),
            Endpoint("create_agent", "POST", "/v1/agents/", self._guard(self._create_agent)),
            Endpoint("list_messages", "GET", _AGENT + "/messages", self._guard(self._messages)),
            Endpoint("redirect_agent", "GET", _AGENT + "/", self._redirect_without_slash),
        ]
        if version == "0.16.8":
            count = self._guard(self._count)
            endpoints.append(Endpoint("count_agents", "GET", "/v1/agents/count", count))
        endpoints += [
            Endpoint("get_agent", "GET", _AGENT, self._guard(self._get_agent)),
            Endpoint("update_agent", "PATCH", _AGENT, self._guard(self._update_agent)),
            Endpoint("delete_agent", "DELETE", _AGENT, self._guard(self._delete_agent)),
        ]
        super().__init__(base_url, endpoints)

    # -- state changes (no HTTP) ----------------------------------------------------------

    def add_agent(self, name: str, agent_id: str | None = None, agent_type: str = "") -> str:
        """An agent, listed newest first like Letta's; an explicit `agent_id` may be any
        string, to seed data no real server would hand out."""
        agent_id = agent_id or new_agent_id()
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id} already exists")
        agent = FakeAgent(agent_id, name, self._now(), agent_type or "letta_v1_agent")
        self._agents[agent_id] = agent
        if agent_type in ("memgpt_agent", "memgpt_v2_agent", "react_agent"):
            self.add_greeting(agent_id)
        return agent_id

    def rename(self, agent_id: str, name: str) -> None:
        agent = self._agents[agent_id]
        agent.name, agent.updated_at = name, self._now()

    def remove(self, agent_id: str) -> None:
        del self._agents[agent_id]

    def agents(self) -> list[FakeAgent]:
        return list(self._agents.values())

    def agent(self, agent_id: str) -> FakeAgent:
        return self._agents[agent_id]

    def advance(self, seconds: int) -> None:
        """Move the fake's clock (it ticks a second per change otherwise)."""
        self._ticks += seconds

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
            agent_id = params.get("agent_id")
            if agent_id is not None and not AGENT_ID.fullmatch(agent_id):
                if agent_id not in self._agents:  # a seeded odd id stays reachable
                    return _invalid("path", "agent_id", "String should match pattern")
            return handler(request, params)

        return run

    def _redirect(self, request: FakeRequest, path: str) -> FakeResponse:
        query = "&".join(f"{key}={value}" for key, value in request.query.items())
        location = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        return FakeResponse(307, None, {"location": location})

    def _redirect_to_slash(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        return self._redirect(request, "/v1/agents/")

    def _redirect_without_slash(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        return self._redirect(request, f"/v1/agents/{params['agent_id']}")

    def _listed(self, query: Mapping[str, str]) -> list[FakeAgent]:
        name = query.get("name")
        agents = [a for a in self._agents.values() if name is None or a.name == name]
        if query.get("order_by") == "updated_at":
            agents.sort(key=lambda agent: (agent.last_change, agent.id))
        return agents if query.get("order") == "asc" else list(reversed(agents))

    def _agent_page(
        self, query: Mapping[str, str], after: str | None, limit: int
    ) -> tuple[list[FakeAgent], bool]:
        agents = self._listed(query)
        ids = [agent.id for agent in agents]
        # 0.16.8 ignores a cursor that names no agent: the walk starts over.
        start = ids.index(after) + 1 if after in ids else 0
        page = agents[start : start + limit]
        has_more = start + limit < len(agents)
        if not page and self.repeat_last_page and agents and limit > 0:
            return agents[-limit:], True
        return page, has_more

    def _relationships(self, request: FakeRequest) -> bool:
        if self.version == "1.x":
            return bool(request.query.get("include"))
        return "include_relationships" not in request.query

    def _list_agents(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        limit = _int_query(request, "limit", _DEFAULT_AGENT_LIMIT)
        if isinstance(limit, FakeResponse):
            return limit
        query = request.query
        page, has_more = self._agent_page(query, query.get("after"), max(limit, 0))
        relationships = self._relationships(request)
        items = [agent.to_json(relationships=relationships) for agent in page]
        self.records_listed += len(items)
        if self.shape == "data":
            return FakeResponse(200, {"data": items, "has_more": has_more})
        return FakeResponse(200, items)

    def _count(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        return FakeResponse(200, len(self._agents))

    def _create_agent(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        body = request.json if isinstance(request.json, dict) else {}
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return _invalid("body", "name", "Field required")
        if REFUSED_NAME.search(name):
            return FakeResponse(500, {"detail": "An unknown error occurred"})
        agent_id = self.add_agent(name, agent_type=str(body.get("agent_type") or ""))
        return FakeResponse(200, self._agents[agent_id].to_json(relationships=True))

    def _get_agent(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        agent = self._agents.get(params["agent_id"])
        if agent is None:
            return _agent_not_found(params["agent_id"])
        return FakeResponse(200, agent.to_json(relationships=self._relationships(request)))

    def _update_agent(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        agent = self._agents.get(params["agent_id"])
        if agent is None:
            return _agent_not_found(params["agent_id"])
        name = request.json.get("name") if isinstance(request.json, dict) else None
        if isinstance(name, str) and name:
            self.rename(agent.id, name)
        return FakeResponse(200, agent.to_json(relationships=True))

    def _delete_agent(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        if self._agents.pop(params["agent_id"], None) is None:
            return _agent_not_found(params["agent_id"])
        return FakeResponse(200, None)

    def _messages(self, request: FakeRequest, params: dict[str, str]) -> FakeResponse:
        agent = self._agents.get(params["agent_id"])
        if agent is None:
            return _agent_not_found(params["agent_id"])
        limit = _int_query(request, "limit", 100)
        if isinstance(limit, FakeResponse):
            return limit
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            return _invalid("query", "order", "Input should be 'asc' or 'desc'")
        rows = self.message_rows(agent, request.query, max(limit, 0), order)
        if isinstance(rows, FakeResponse):
            return rows
        return FakeResponse(200, agent.records(rows))


def _agent_not_found(agent_id: str) -> FakeResponse:
    return FakeResponse(404, {"detail": f"Agent with ID {agent_id} not found"})
