"""A steady sync asks Letta only what changed: `LettaDirectory` on the fake Letta.

The fake sets `updated_at` as Letta 0.16.8 does (on a rename and on a message; held to it by
tests/letta_contract_checks.py), and lists by it when asked.
"""

from __future__ import annotations

import pytest

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

    assert sent_first == N and {a.id for a in first.agents} == set(w.ids)
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
    assert sent >= N


async def test_every_so_many_listings_are_whole_whatever_the_changes_say() -> None:
    w = Watched()
    w.directory.full_every = 2
    await w.listing()
    sent = []
    for _ in range(3):
        w.fake.advance(60)
        sent.append((await w.listing())[1])

    assert sent == [3, 3, N]


async def test_broken_records_are_listed_whole_every_time() -> None:
    w = Watched()
    w.fake.add_agent("")  # a record without a name cannot be kept in the directory
    await w.listing()
    w.fake.advance(60)

    listing, sent = await w.listing()

    assert sent == N + 1 and len(listing.invalid) == 1
