"""Tests of the fake Letta server itself: its core (``handle``) and its respx adapter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import respx
from respx.models import AllMockedAssertionError

from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio


def get(
    letta: FakeLetta, path: str, query: dict[str, str] | None = None, token: str | None = None
) -> FakeResponse:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return letta.handle(FakeRequest("GET", path, query or {}, headers))


def ids_of(page: Any) -> list[str]:
    items = page["data"] if isinstance(page, dict) else page
    return [agent["id"] for agent in items]


def walk_pages(letta: FakeLetta, limit: int, max_pages: int = 20) -> list[list[str]]:
    pages: list[list[str]] = []
    query = {"limit": str(limit)}
    for _ in range(max_pages):
        page = ids_of(get(letta, "/v1/agents/", query).json)
        if not page:
            break
        pages.append(page)
        query = {"limit": str(limit), "after": page[-1]}
    return pages


def test_agents_are_listed_newest_first_with_a_cursor() -> None:
    letta = FakeLetta()
    ids = [letta.add_agent(f"a{i}") for i in range(5)]
    newest_first = list(reversed(ids))
    assert walk_pages(letta, limit=2) == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    whole = get(letta, "/v1/agents/").json
    assert isinstance(whole, list) and ids_of(whole) == newest_first
    assert {"id", "name", "created_at", "tools"} <= set(whole[0])
    assert whole[0]["name"] == "a4"


def test_data_shape_reports_has_more() -> None:
    letta = FakeLetta(shape="data")
    ids = list(reversed([letta.add_agent(f"a{i}") for i in range(3)]))
    first = get(letta, "/v1/agents/", {"limit": "2"}).json
    assert ids_of(first) == ids[:2] and first["has_more"] is True
    last = get(letta, "/v1/agents/", {"limit": "2", "after": ids[1]}).json
    assert ids_of(last) == ids[2:] and last["has_more"] is False


def test_repeat_last_page_never_ends() -> None:
    letta = FakeLetta(repeat_last_page=True)
    ids = list(reversed([letta.add_agent(f"a{i}", agent_id=f"agent-{i}") for i in range(3)]))
    pages = walk_pages(letta, limit=2, max_pages=5)
    assert pages == [ids[0:2], ids[2:3], ids[1:3], ids[1:3], ids[1:3]]


def test_a_newer_server_lists_lean_and_has_no_count() -> None:
    letta = FakeLetta(version="1.x")
    agent = letta.add_agent("a")
    assert "tools" not in get(letta, "/v1/agents/").json[0]
    assert "tools" in get(letta, "/v1/agents/", {"include": "agent.tools"}).json[0]
    assert get(letta, "/v1/agents/count").status == 422
    assert get(letta, f"/v1/agents/{agent}").status == 200


def test_rename_remove_and_get_agent() -> None:
    letta = FakeLetta()
    keep = letta.add_agent("old")
    gone = letta.add_agent("doomed")
    letta.rename(keep, "new")
    letta.remove(gone)
    assert get(letta, f"/v1/agents/{keep}").json["name"] == "new"
    missing = get(letta, f"/v1/agents/{gone}")
    assert (missing.status, missing.json) == (404, {"detail": f"Agent with ID {gone} not found"})
    assert ids_of(get(letta, "/v1/agents/").json) == [keep]
    assert get(letta, f"/v1/agents/{keep}/").status == 307


def test_messages_count_stored_messages_and_list_the_newest_oldest_first() -> None:
    letta = FakeLetta()
    agent = letta.add_agent("a")
    letta.add_message(agent, "user_message", "hello")
    letta.add_message(agent, "tool_call_message", '{"q": 1}', tool_name="search")
    letta.add_message(agent, "tool_return_message", "result")
    letta.converse(agent, "why?", "because")
    when = datetime(2030, 1, 1, 0, 0, 0, 750_000, tzinfo=timezone.utc)
    letta.add_message(agent, "assistant_message", [{"type": "text", "text": "hi"}], date=when)
    path = f"/v1/agents/{agent}/messages"
    # The newest two stored messages: the exchange's silent tool return, then "hi".
    newest = get(letta, path, {"limit": "2"}).json
    assert [m["message_type"] for m in newest] == ["assistant_message"]
    assert newest[0]["content"] == [{"type": "text", "text": "hi"}]
    assert newest[0]["date"] == "2030-01-01T00:00:00+00:00"  # whole seconds
    step = get(letta, path, {"limit": "3"}).json[:2]
    assert [m["message_type"] for m in step] == ["reasoning_message", "assistant_message"]
    assert step[0]["id"] == step[1]["id"] and step[0]["otid"] != step[1]["otid"]
    oldest = get(letta, path, {"order": "asc"}).json
    assert oldest[0]["content"] == "hello"
    assert oldest[1]["tool_call"] == {
        "name": "search",
        "arguments": '{"q": 1}',
        "tool_call_id": f"call-{oldest[1]['id']}",
    }
    before = get(letta, path, {"limit": "1", "before": oldest[1]["id"]}).json
    assert [m["content"] for m in before] == ["hello"]
    assert get(letta, f"/v1/agents/agent-{'0' * 8}-x/messages").status == 422
    assert get(letta, path, {"limit": "many"}).status == 422
    with pytest.raises(ValueError, match="message_type"):
        letta.add_message(agent, "shout_message", "x")


def test_token_is_required_when_configured() -> None:
    letta = FakeLetta(token="s3cret")
    letta.add_agent("a")
    assert get(letta, "/v1/agents/").json == {"detail": "Unauthorized"}
    assert get(letta, "/v1/agents/", token="wrong").status == 401
    assert get(letta, "/v1/agents/", token="s3cret").status == 200
    letta.expire_token("s3cret")
    assert get(letta, "/v1/agents/", token="s3cret").status == 401
    assert letta.requests_by_kind["list_agents"] == 4


def test_fail_next_and_unknown_paths() -> None:
    letta = FakeLetta()
    letta.fail_next("list_agents", 503, {"detail": "busy"}, {"Retry-After": "2"})
    busy = get(letta, "/v1/agents/")
    assert (busy.status, busy.headers) == (503, {"Retry-After": "2"})
    assert get(letta, "/v1/agents/").status == 200
    assert letta.requests_by_kind["list_agents"] == 2
    assert get(letta, "/v2/nothing").json == {"detail": "Not Found"}


# -- through respx, on both anyio backends ----------------------------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def letta() -> FakeLetta:
    return FakeLetta(base_url="http://127.0.0.1:8283/api", shape="data", token="t")


@pytest.fixture
def router(letta: FakeLetta) -> Iterator[respx.MockRouter]:
    mock_router = respx.MockRouter(using=None, assert_all_called=False)
    letta.mount(mock_router)
    with mock_router:
        yield mock_router


async def test_round_trip_through_respx(letta: FakeLetta, router: respx.MockRouter) -> None:
    agent = letta.add_agent("Ada")
    letta.add_message(agent, "assistant_message", "hi")
    transport = httpx.MockTransport(router.async_handler)
    headers = {"Authorization": "Bearer t"}
    async with httpx.AsyncClient(transport=transport, headers=headers) as client:
        listed = await client.get(f"{letta.base_url}/v1/agents/", params={"limit": 10})
        one = await client.get(f"{letta.base_url}/v1/agents/{agent}")
        messages = await client.get(f"{letta.base_url}/v1/agents/{agent}/messages")
        with pytest.raises(AllMockedAssertionError):
            await client.get("http://127.0.0.1:9999/api/v1/agents")
    assert listed.json() == {"data": [one.json()], "has_more": False}
    assert [m["content"] for m in messages.json()] == ["hi"]
    assert router["list_agents"].call_count == 1
    assert router["get_agent"].call_count == 1
    assert router["list_messages"].call_count == 1
