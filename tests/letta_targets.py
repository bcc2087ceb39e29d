"""The Letta servers the Letta scenarios and checks run on: the fake, and a real 0.16.8.

Both are driven the same way, over HTTP on 127.0.0.1: agents are created, renamed and deleted
through Letta's REST API. Conversations differ only in who answers: the fake stores an
exchange directly; the real server holds one, calling the stand-in model
(tests/letta_real/stand_in_model.py), which answers ``stand-in reply: <question>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import httpx

from app.testing.letta import FakeLetta, LettaHTTPServer

REPLY_PREFIX = "stand-in reply: "


class LettaTarget(Protocol):
    base_url: str
    token: str | None

    def add_agent(self, name: str, agent_type: str = "") -> str: ...

    def rename(self, agent_id: str, name: str) -> None: ...

    def remove(self, agent_id: str) -> None: ...

    def converse(self, agent_id: str, question: str) -> str:
        """Hold one exchange; returns the agent's answer."""
        ...


class RestLetta:
    """A Letta server driven through its REST API (the fake's or the real one's)."""

    def __init__(self, base_url: str, token: str | None, create: dict[str, Any]) -> None:
        self.base_url, self.token = base_url, token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=120)
        self._create = create

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def add_agent(self, name: str, agent_type: str = "") -> str:
        body = {"name": name, **self._create}
        if agent_type:
            body["agent_type"] = agent_type
        response = self.http.post("/v1/agents/", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    def rename(self, agent_id: str, name: str) -> None:
        self.http.patch(f"/v1/agents/{agent_id}", json={"name": name}).raise_for_status()

    def remove(self, agent_id: str) -> None:
        self.http.delete(f"/v1/agents/{agent_id}").raise_for_status()

    def clear(self) -> None:
        """Delete every agent: a scenario on a shared server starts from an empty Letta."""
        listing = self.http.get("/v1/agents/", params={"limit": "100000"})
        listing.raise_for_status()
        for agent in listing.json():
            self.remove(agent["id"])

    def close(self) -> None:
        self.http.close()


class FakeTarget(RestLetta):
    """The fake over HTTP; it has no model, so an exchange is stored as Letta stores one."""

    def __init__(self, fake: FakeLetta, base_url: str) -> None:
        super().__init__(base_url, fake.token, {})
        self.fake = fake

    def converse(self, agent_id: str, question: str) -> str:
        answer = REPLY_PREFIX + question
        self.fake.converse(agent_id, question, answer)
        return answer


class RealTarget(RestLetta):
    """A real Letta server whose agents think with the stand-in model."""

    def converse(self, agent_id: str, question: str) -> str:
        body = {"messages": [{"role": "user", "content": question}]}
        response = self.http.post(f"/v1/agents/{agent_id}/messages", json=body)
        response.raise_for_status()
        return REPLY_PREFIX + question


@contextmanager
def served_fake(token: str) -> Iterator[FakeTarget]:
    """A fresh fake Letta requiring `token`, served over HTTP on 127.0.0.1."""
    fake = FakeLetta(token=token)
    with LettaHTTPServer(fake.handle) as server:
        target = FakeTarget(fake, server.base_url)
        try:
            yield target
        finally:
            target.close()
