"""The shared scenarios on the in-process fakes (respx routes through HttpxTransport)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from drift_scenarios import DRIFT_SCENARIOS, V3, map_agent_to, room_of, room_path, user_of

from app.testing.harness import SyncHarness

from scenarios import SCENARIOS
from worlds import FakeWorld, World

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["password", "appservice"])
@pytest.mark.parametrize("scenario", [*SCENARIOS, *DRIFT_SCENARIOS], ids=lambda s: s.__name__)
async def test_scenario(
    scenario: Callable[[World], Awaitable[None]], mode: str, sync_harness: SyncHarness
) -> None:
    if mode == "appservice":
        sync_harness.use_appservice()
    await scenario(FakeWorld(sync_harness))


async def test_an_upgraded_room_where_only_the_admin_is_invited_is_followed_too(
    sync_harness: SyncHarness,
) -> None:
    """The upgrader invites the admin, not the agent: the admin joins and lets the agent in."""
    world = FakeWorld(sync_harness)
    moderator = world.new_person("moderator")
    agent_id = world.letta.add_agent("Upgraded")
    await world.sync(invite_users=(moderator,))
    old = room_of(world, agent_id)
    world.act(moderator, "POST", room_path(old, "join"), {})
    new = str(
        world.act(moderator, "POST", room_path(old, "upgrade"), {"new_version": "12"})[
            "replacement_room"
        ]
    )
    world.act(moderator, "POST", room_path(new, "invite"), {"user_id": world.admin_id})

    report = await world.sync(invite_users=(moderator,))

    assert agent_id in report.repaired and room_of(world, agent_id) == new
    assert {user_of(world, agent_id), world.admin_id} <= world.joined(new)


async def test_an_agent_back_in_its_room_writes_what_only_it_may_in_the_same_sync(
    sync_harness: SyncHarness,
) -> None:
    """A room of the older service: the admin has power 0 there and the agent user, its
    creator, all of it. The agent left and the agent was renamed: the admin lets it back in,
    and the agent renames the room in that same sync."""
    world = FakeWorld(sync_harness)
    agent_id = world.letta.add_agent("Legacy")
    await world.sync()
    user = user_of(world, agent_id)
    body = {"name": "Legacy", "preset": "private_chat", "invite": [world.admin_id, world.bot_id]}
    old_room = str(world.act(user, "POST", f"{V3}/createRoom", body)["room_id"])
    for member in (world.admin_id, world.bot_id):
        world.act(member, "POST", room_path(old_room, "join"), {})
    map_agent_to(world, agent_id, old_room)
    assert (await world.sync()).ok
    world.leave(user, old_room)
    world.letta.rename(agent_id, "Legacy renamed")

    report = await world.sync()

    assert report.ok and report.renamed == [agent_id], report.failures
    assert user in world.joined(old_room)
    assert world.state(old_room, "m.room.name") == {"name": "Legacy renamed"}
