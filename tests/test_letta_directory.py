"""A steady sync asks Letta only what changed: `LettaDirectory` on the fake Letta.

The fake sets `updated_at` as Letta 0.16.8 does (on a rename and on a message; held to it by
tests/letta_contract_checks.py), and lists by it when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from app.http.transport import Request, Response, Transport
from app.letta import AgentList, LettaClient, LettaDirectory
from app.testing.inprocess import InProcessTransport
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio


N = 20


class Watched:
    """N agents made ten seconds apart, listed 3 a page."""

    def __init__(self) -> None:
        self.fake = FakeLetta()
        self.ids = []
        for n in range(N):
            self.fake.advance(10)
            self.ids.append(self.fake.add_agent(f"Agent {n}"))
        self.client = LettaClient.connect(InProcessTransport([self.fake]), self.fake.base_url)
        self.directory = LettaDirectory()

    async def listing(self) -> tuple[AgentList, int]:
        """The listing, and how many agent records Letta sent for it."""
        self.fake.requests_by_kind.clear()
        before = self._records_sent()
        listing = await self.client.list_agents(page_size=3, directory=self.directory)
        return listing, self._records_sent() - before

    def _records_sent(self) -> int:
        return self.fake.records_listed


async def test_a_steady_listing_asks_only_for_what_changed() -> None:
    w = Watched()
    first, sent_first = await w.listing()

    steady, sent_steady = await w.listing()

    # A full listing: Letta's newest change first (one record), then every agent.
    assert sent_first == N + 1 and {a.id for a in first.agents} == set(w.ids)
    assert steady.by_id() == first.by_id() and steady.incomplete is None
    # The count, and one page that reaches an agent older than the newest change (less the
    # commit slack): the newest agent, and two older ones the page holds.
    assert w.fake.requests_by_kind["count_agents"] == 1
    assert w.fake.requests_by_kind["list_agents"] == 1 and sent_steady == 3


async def test_a_rename_and_a_new_agent_arrive_with_the_changes() -> None:
    w = Watched()
    await w.listing()
    w.fake.advance(60)
    w.fake.rename(w.ids[2], "Renamed")
    new = w.fake.add_agent("Newcomer")

    listing, sent = await w.listing()

    names = {agent.id: agent.name for agent in listing.agents}
    assert names[w.ids[2]] == "Renamed" and names[new] == "Newcomer"
    assert set(names) == {*w.ids, new} and listing.missing(w.ids) == []
    assert sent == 6  # the two changes, the agent within the slack, and what its pages held


async def test_a_deleted_agent_makes_the_count_disagree_and_the_list_is_walked_whole() -> None:
    w = Watched()
    await w.listing()
    w.fake.advance(60)
    w.fake.remove(w.ids[0])
    w.fake.add_agent("Replacement")  # one in, one out: only the ids tell

    listing, sent = await w.listing()

    assert listing.missing(w.ids) == [w.ids[0]] and listing.incomplete is None
    assert sent >= N + 1


async def test_every_so_many_listings_are_whole_whatever_the_changes_say() -> None:
    w = Watched()
    w.directory.full_every = 2
    await w.listing()
    sent = []
    for _ in range(3):
        w.fake.advance(60)
        sent.append((await w.listing())[1])

    assert sent == [3, 3, N + 1]


async def test_broken_records_are_listed_whole_every_time() -> None:
    w = Watched()
    w.fake.add_agent("")  # a record without a name cannot be kept in the directory
    await w.listing()
    w.fake.advance(60)

    listing, sent = await w.listing()

    assert sent == N + 2 and len(listing.invalid) == 1


class DuringTheWalk:
    """Runs `action` once, right after the first page of a full walk was answered: changes
    made while a long walk runs (10,000 agents take seconds)."""

    def __init__(self, inner: Transport, action: Callable[[], None]) -> None:
        self.inner, self.action, self.done = inner, action, False

    async def send(self, request: Request) -> Response:
        response = await self.inner.send(request)
        query = parse_qs(urlsplit(request.url).query)
        first_page = "order_by" not in query and "after" not in query
        if request.url.split("?")[0].endswith("/v1/agents/") and first_page and not self.done:
            self.done = True
            self.action()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_changes_made_during_a_long_full_walk_are_found_by_the_next_one() -> None:
    """An agent created after the walk's first page, a message to one on its last page long
    after: the newest change the walk saw is not where the next walk of changes may start."""
    w = Watched()
    born: list[str] = []

    def meanwhile() -> None:
        w.fake.advance(30)
        born.append(w.fake.add_agent("Born during the walk"))
        w.fake.rename(w.ids[3], "Renamed during the walk")  # on a page still to come
        w.fake.advance(30)
        w.fake.converse(w.ids[0], "late", "message")  # the oldest agent: the last page

    w.client = LettaClient.connect(
        DuringTheWalk(InProcessTransport([w.fake]), meanwhile), w.fake.base_url
    )
    await w.listing()
    w.fake.rename(w.ids[18], "Renamed after")  # on the walk's first page
    w.fake.remove(w.ids[5])  # unchanged since: only the count can tell

    listing, _ = await w.listing()

    names = {agent.id: agent.name for agent in listing.agents}
    assert set(names) == {*w.ids, *born} - {w.ids[5]}
    assert names[w.ids[18]] == "Renamed after"
    assert names[w.ids[3]] == "Renamed during the walk"
    assert listing.missing([*w.ids, *born]) == [w.ids[5]]
