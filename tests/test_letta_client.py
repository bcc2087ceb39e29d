"""LettaClient over HttpxTransport on respx routes: paging, parsing and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import respx

from app.errors import LettaError, MalformedResponse
from app.http.retry import RetryPolicy
from app.letta import Agent, LettaClient, LettaMessage

from helpers import LETTA, FakeClock, make_router, make_transport

pytestmark = pytest.mark.anyio

TOKEN = "letta-secret-token"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with make_router(LETTA, assert_all_called=True) as mock_router:
        yield mock_router


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def connect(
    router: respx.MockRouter,
    clock: FakeClock,
    token: str | None = TOKEN,
    policy: RetryPolicy | None = None,
) -> LettaClient:
    return LettaClient.connect(
        make_transport(router), LETTA, token=token, policy=policy, pacing=clock.pacing()
    )


@pytest.fixture
def letta(router: respx.MockRouter, clock: FakeClock) -> LettaClient:
    return connect(router, clock)


def agents(*ids: str) -> list[dict[str, Any]]:
    return [{"id": agent_id, "name": f"Agent {agent_id}"} for agent_id in ids]


def paged(pages: dict[str | None, Any]) -> Any:
    """A side effect answering by the `after` cursor; an unknown cursor fails the test."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("after")])

    return handler


def queries(route: respx.Route) -> list[dict[str, str]]:
    return [dict(call.request.url.params) for call in route.calls]


# --- list_agents ----------------------------------------------------------------------------

LIST = "/v1/agents/"
LEAN = {"include_relationships": ""}


def counted(router: respx.MockRouter, total: int | None) -> respx.Route:
    """Letta's count route; None: a server without one (its path then names an agent: 422)."""
    route = router.get("/v1/agents/count")
    if total is None:
        return route.respond(422, json={"detail": [{"loc": ["path", "agent_id"]}]})
    return route.respond(200, json=total)


@pytest.mark.parametrize("wrap", [False, True], ids=["bare-list", "data-object"])
async def test_list_agents_single_page_shapes(
    router: respx.MockRouter, letta: LettaClient, wrap: bool
) -> None:
    counted(router, None)
    records = agents("a1", "a2")
    first = {"data": records, "has_more": False} if wrap else records
    route = router.get(LIST).mock(side_effect=paged({None: first, "a2": []}))
    listing = await letta.list_agents(page_size=100)
    assert listing.agents == (Agent("a1", "Agent a1"), Agent("a2", "Agent a2"))
    # `has_more: false` ends the list at once; without a count, a bare list needs an empty
    # page to say so, because a short page may only mean that the server caps `limit`.
    first_query = {"limit": "100", **LEAN}
    expected = [first_query] if wrap else [first_query, {**first_query, "after": "a2"}]
    assert (listing.invalid, listing.pages, listing.incomplete) == ((), len(expected), None)
    assert queries(route) == expected


async def test_the_list_is_asked_for_lean_at_the_trailing_slash_route(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, 1)
    route = router.get(LIST).respond(200, json=agents("a"))
    await letta.list_agents(page_size=50)
    request = route.calls.last.request
    assert request.url.raw_path == b"/v1/agents/?limit=50&include_relationships="


async def test_a_short_page_that_reaches_lettas_count_ends_the_walk(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, 3)
    route = router.get(LIST).mock(side_effect=paged({None: agents("a", "b"), "b": agents("c")}))
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["a", "b", "c"]
    assert route.call_count == 2 and listing.incomplete is None


async def test_list_agents_follows_after_cursor(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, None)
    route = router.get(LIST).mock(
        side_effect=paged(
            {None: agents("a", "b"), "b": agents("c", "d"), "d": agents("e"), "e": []}
        )
    )
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["a", "b", "c", "d", "e"]
    assert listing.pages == 4
    assert [query.get("after") for query in queries(route)] == [None, "b", "d", "e"]


async def test_list_agents_goes_on_when_the_server_caps_the_page_size(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, None)
    route = router.get(LIST).mock(side_effect=paged({None: agents("a"), "a": agents("b"), "b": []}))
    listing = await letta.list_agents(page_size=100)
    assert [agent.id for agent in listing.agents] == ["a", "b"]
    assert route.call_count == 3


async def test_list_agents_stops_on_empty_page(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, None)
    route = router.get(LIST).mock(
        side_effect=paged({None: {"data": agents("a", "b")}, "b": {"data": []}})
    )
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["a", "b"]
    assert route.call_count == 2


async def test_list_agents_deduplicates_overlapping_pages(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, None)
    route = router.get(LIST).mock(
        side_effect=paged(
            {None: agents("a", "b"), "b": agents("b", "c"), "c": agents("d"), "d": []}
        )
    )
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["a", "b", "c", "d"]
    assert [query.get("after") for query in queries(route)] == [None, "b", "c", "d"]


async def test_a_cursor_that_sends_the_walk_back_to_the_first_page_proves_no_end(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    """Letta 0.16.8 ignores an `after` naming an agent deleted meanwhile: the first page comes
    back. That page brings nothing new, and what lies past the cursor was never seen."""
    counted(router, None)
    route = router.get(LIST).respond(200, json=agents("a", "b"))
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["a", "b"]
    assert listing.incomplete == "page 2 repeated agents already listed"
    assert listing.missing(["a", "gone"]) == []
    assert route.call_count == 4  # two pages, walked twice


async def test_a_walk_sent_back_once_is_walked_again_from_the_start(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, 3)
    answers = iter([agents("a", "b"), agents("a", "b"), agents("a", "b"), agents("c")])
    router.get(LIST).mock(side_effect=lambda request: httpx.Response(200, json=next(answers)))
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["a", "b", "c"]
    assert listing.incomplete is None and listing.missing(["a", "gone"]) == ["gone"]


async def test_a_listing_below_lettas_count_is_incomplete(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, 5)
    router.get(LIST).mock(side_effect=paged({None: agents("a", "b"), "b": []}))
    listing = await letta.list_agents(page_size=2)
    assert listing.incomplete == "Letta counts 5 agents but listed 2"
    assert listing.missing(["a", "c"]) == []


async def test_list_agents_reports_invalid_records(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, 3)  # good, nameless and the blank id: every id Letta holds
    router.get(LIST).respond(
        200,
        json=[
            {"id": "good", "name": "Good"},
            {"name": "no id"},
            {"id": "nameless", "name": None},
            {"id": "  ", "name": "blank id"},
            "not an object",
            None,
        ],
    )
    listing = await letta.list_agents()
    assert listing.agents == (Agent("good", "Good"),)
    assert listing.by_id() == {"good": Agent("good", "Good")}
    assert listing.invalid == (
        "agent record without an id",
        "agent 'nameless' has no name",
        "agent record without an id",
        "agent record is not an object: str",
        "agent record is not an object: NoneType",
    )


async def test_list_agents_full_page_of_invalid_records_does_not_stop_paging(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    counted(router, None)
    nameless = [{"id": "x1", "name": None}, {"id": "x2", "name": None}]
    route = router.get(LIST).mock(
        side_effect=paged({None: nameless, "x2": agents("c"), "c": []}),
    )
    listing = await letta.list_agents(page_size=2)
    assert [agent.id for agent in listing.agents] == ["c"]
    assert route.call_count == 3


@pytest.mark.parametrize("body", [{"agents": []}, "text", {"data": {"id": "a"}}])
async def test_list_agents_wrong_shape_is_malformed(
    router: respx.MockRouter, letta: LettaClient, body: Any
) -> None:
    counted(router, None)
    router.get(LIST).respond(200, json=body)
    with pytest.raises(MalformedResponse):
        await letta.list_agents()


async def test_a_redirect_is_an_error_that_says_where_it_pointed(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    location = "http://user:pw@letta.example/v1/agents/?limit=1"
    router.get("/v1/agents/count").respond(307, headers={"location": location})
    with pytest.raises(LettaError) as caught:
        await letta.list_agents()
    assert caught.value.status == 307
    assert "redirected to http://letta.example/v1/agents/" in str(caught.value)
    assert "pw" not in str(caught.value) and "limit" not in str(caught.value)


async def test_bearer_token_sent_when_configured(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    count = counted(router, 0)
    route = router.get(LIST).respond(200, json=[])
    await letta.list_agents()
    for sent in (route, count):
        assert sent.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_no_authorization_header_without_token(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    counted(router, 0)
    route = router.get(LIST).respond(200, json=[])
    await connect(router, clock, token=None).list_agents()
    assert "Authorization" not in route.calls.last.request.headers


def test_repr_hides_token(clock: FakeClock) -> None:
    text = repr(connect(make_router(LETTA), clock))
    assert TOKEN not in text and "has_token=True" in text


# --- get_agent ------------------------------------------------------------------------------


async def test_get_agent(router: respx.MockRouter, letta: LettaClient) -> None:
    route = router.get("/v1/agents/agent-1").respond(200, json={"id": "agent-1", "name": "One"})
    assert await letta.get_agent("agent-1") == Agent("agent-1", "One")
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_get_agent_percent_encodes_id(router: respx.MockRouter, letta: LettaClient) -> None:
    route = router.get(path="/v1/agents/a/b?c#d").respond(200, json={"id": "a/b?c#d", "name": "X"})
    assert await letta.get_agent("a/b?c#d") == Agent("a/b?c#d", "X")
    request = route.calls.last.request
    assert request.url.raw_path == b"/v1/agents/a%2Fb%3Fc%23d"
    assert request.url.query == b""


async def test_get_agent_404_is_letta_error(router: respx.MockRouter, letta: LettaClient) -> None:
    route = router.get("/v1/agents/missing").respond(404, json={"detail": "Agent not found"})
    with pytest.raises(LettaError) as caught:
        await letta.get_agent("missing")
    assert (caught.value.status, caught.value.detail) == (404, "Agent not found")
    assert "Agent not found" in str(caught.value)
    assert route.call_count == 1


async def test_get_agent_invalid_record_is_malformed(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    router.get("/v1/agents/a").respond(200, json={"id": "a", "name": None})
    with pytest.raises(MalformedResponse, match="has no name"):
        await letta.get_agent("a")


# --- message_page ---------------------------------------------------------------------------

MESSAGES = "/v1/agents/agent-1/messages"


def message(message_id: str, kind: str, content: Any, date: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": message_id, "message_type": kind, "content": content}
    if date is not None:
        record["date"] = date
    return record


async def test_a_page_listed_oldest_first_keeps_its_order(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    """Letta 0.16.8 answers `order=desc` with the newest messages, oldest first; records of
    one second keep the server's order (a later tie must not be put before an earlier one)."""
    oldest_first = [
        message("m1", "system_message", "first", "2024-05-01T10:00:01+00:00"),
        message("m2", "user_message", [{"type": "text", "text": "a"}, "b", {"x": 1}], None),
        message("m3", "reasoning_message", "hm", "2024-05-01T10:00:02"),
        message("m3", "assistant_message", "third", "2024-05-01T10:00:02Z"),
    ]
    oldest_first[1]["date"] = "2024-05-01T10:00:02"
    route = router.get(MESSAGES).respond(200, json=oldest_first)
    result = await letta.message_page("agent-1", 3, before="m9")
    assert queries(route) == [{"limit": "3", "order": "desc", "before": "m9"}]
    assert [(m.id, m.text) for m in result] == [
        ("m1", "first"),
        ("m2", "a\nb"),
        ("m3", "hm"),
        ("m3", "third"),
    ]
    assert result[1] == LettaMessage("m2", "user_message", "a\nb")
    assert result[1].date == datetime(2024, 5, 1, 10, 0, 2, tzinfo=timezone.utc)
    assert [m.is_conversation for m in result] == [False, True, False, True]


async def test_a_page_listed_newest_first_is_turned_round(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    newest_first = [
        message("m3", "assistant_message", "third", "2024-05-01T10:00:03Z"),
        message("m2", "user_message", "second", "2024-05-01T10:00:02Z"),
        message("m1", "system_message", "first", "2024-05-01T10:00:01Z"),
    ]
    router.get(MESSAGES).respond(200, json=newest_first)
    assert [m.id for m in await letta.message_page("agent-1", 3)] == ["m1", "m2", "m3"]


async def test_message_page_data_wrapper_without_dates(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    router.get(path="/v1/agents/a/b/messages").respond(
        200,
        json={
            "data": [
                message("old", "user_message", "earlier"),
                {"id": "skip", "content": "no type"},
                message("new", "assistant_message", "later"),
            ]
        },
    )
    result = await letta.message_page("a/b", 5)
    assert [m.id for m in result] == ["old", "new"]


async def test_message_page_wrong_shape_is_malformed(
    router: respx.MockRouter, letta: LettaClient
) -> None:
    router.get(MESSAGES).respond(200, json={"messages": []})
    with pytest.raises(MalformedResponse):
        await letta.message_page("agent-1", 3)


# --- retries and errors ---------------------------------------------------------------------


async def test_503_then_success_is_retried(
    router: respx.MockRouter, clock: FakeClock, letta: LettaClient
) -> None:
    counted(router, 0)
    route = router.get(LIST).mock(
        side_effect=[httpx.Response(503, json={"detail": "busy"}), httpx.Response(200, json=[])]
    )
    listing = await letta.list_agents()
    assert (listing.agents, listing.pages) == ((), 1)
    assert route.call_count == 2
    assert clock.sleeps == [0.5]


async def test_429_retry_after_header_is_honoured(
    router: respx.MockRouter, clock: FakeClock, letta: LettaClient
) -> None:
    route = router.get("/v1/agents/a").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"detail": "slow"}),
            httpx.Response(200, json={"id": "a", "name": "A"}),
        ]
    )
    assert await letta.get_agent("a") == Agent("a", "A")
    assert clock.sleeps == [3.0]
    assert route.call_count == 2


async def test_persistent_503_raises_letta_error(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    client = connect(router, clock, policy=RetryPolicy(max_attempts=2))
    route = router.get("/v1/agents/count").respond(503, json={"detail": "down for maintenance"})
    with pytest.raises(LettaError) as caught:
        await client.count_agents()
    assert (caught.value.status, caught.value.detail) == (503, "down for maintenance")
    assert route.call_count == 2


async def test_html_error_body_is_readable(
    router: respx.MockRouter, clock: FakeClock, letta: LettaClient
) -> None:
    html = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
    route = router.get("/v1/agents/count").respond(
        500, content=html, headers={"Content-Type": "text/html"}
    )
    with pytest.raises(LettaError) as caught:
        await letta.count_agents()
    error = caught.value
    assert error.status == 500
    assert "non-JSON error body" in error.detail and "500 Internal Server Error" in error.detail
    assert "500 Internal Server Error" in str(error)
    assert error.body == html
    assert TOKEN not in str(error)
    # 500 is not a gateway error: sent once, no waiting.
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_empty_error_body(router: respx.MockRouter, letta: LettaClient) -> None:
    router.get("/v1/agents/count").respond(400)
    with pytest.raises(LettaError) as caught:
        await letta.count_agents()
    assert (caught.value.status, caught.value.detail) == (400, "empty error body")
