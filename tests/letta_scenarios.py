"""Sync scenarios whose subject is Letta, run with a real Synapse on the fake Letta and on a
real Letta 0.16.8 (tests/contract/test_letta_scenarios.py): listing, rename, removal, history
import from a real conversation, and a refused token."""

from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.sync.history import ROLE_KEY, USER_LABEL

from worlds import SynapseWorld, mappings


async def listing_rename_and_removal_follow_letta(world: SynapseWorld) -> None:
    names = ["Lister", "Renamed", "Deleted"]
    ids = dict(zip(names, (world.letta.add_agent(name) for name in names), strict=True))

    first = await world.sync(letta_page_size=2)

    assert first.ok, first.failures
    assert sorted(first.rooms_created) == sorted(ids.values())
    world.letta.rename(ids["Renamed"], "Renamed twice")
    world.letta.remove(ids["Deleted"])

    second = await world.sync(letta_page_size=2)

    assert second.ok, second.failures
    assert second.renamed == [ids["Renamed"]]
    assert second.removed_from_letta == [ids["Deleted"]]
    room = mappings(world)[ids["Renamed"]]["room_id"]
    assert world.state(room, "m.room.name") == {"name": "Renamed twice"}
    assert mappings(world)[ids["Deleted"]]["removed_from_letta"] is True


async def a_conversation_is_imported_as_a_reader_expects_it(world: SynapseWorld) -> None:
    agent_id = world.letta.add_agent("Conversant", agent_type="memgpt_v2_agent")
    answers = [world.letta.converse(agent_id, f"question {n}") for n in range(3)]

    report = await world.sync(history_import_limit=4)

    assert report.ok, report.failures
    room = mappings(world)[agent_id]["room_id"]
    # What a Matrix client shows: the room's events as the homeserver serves them.
    shown = [
        (e["content"][ROLE_KEY], e["content"]["body"])
        for e in world.messages(room)
        if e.get("type") == "m.room.message"
    ]
    assert shown == [
        ("user", f"{USER_LABEL}\n> question 1"),
        ("assistant", answers[1]),
        ("user", f"{USER_LABEL}\n> question 2"),
        ("assistant", answers[2]),
    ]
    assert report.history_imported == {agent_id: 4}


async def a_refused_letta_token_stops_the_sync_before_the_homeserver(world: SynapseWorld) -> None:
    world.letta.add_agent("Guarded")

    with pytest.raises(ConfigError, match="LETTA_TOKEN"):
        await world.sync(letta_token="not-the-token")

    assert not world.has_user(world.bot_id)


LETTA_SCENARIOS = [
    listing_rename_and_removal_follow_letta,
    a_conversation_is_imported_as_a_reader_expects_it,
    a_refused_letta_token_stops_the_sync_before_the_homeserver,
]
