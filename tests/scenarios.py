"""Sync scenarios shared by the respx tier (tests/sync) and the Synapse tier (tests/contract)."""

from __future__ import annotations

from lossy_transport import LosingReplies

from app.sync.history import SHORTENED_MARKER
from app.testing.letta import FakeLetta

from worlds import World, mappings, space_file


def assert_agent_in_order(world: World, agent_id: str, name: str, space_id: str) -> str:
    mapping = mappings(world)[agent_id]
    user_id, room_id = mapping["matrix_user_id"], mapping["room_id"]
    assert mapping["agent_name"] == name
    assert world.displayname(user_id) == name
    assert {user_id, world.admin_id, world.bot_id} <= world.joined(room_id)
    assert world.state(room_id, "m.room.name") == {"name": name}
    parent = world.state(room_id, "m.space.parent", space_id)
    assert parent is not None and parent["via"] == [world.server_name]
    child = world.state(space_id, "m.space.child", room_id)
    assert child is not None and child["via"] == [world.server_name]
    assert mapping["invitation_status"] == {world.admin_id: "joined", world.bot_id: "joined"}
    assert mapping["created"] is True and mapping["room_created"] is True
    return str(room_id)


async def full_sync_from_empty_state(world: World) -> None:
    names = {world.letta.add_agent(f"Scenario agent {n}"): f"Scenario agent {n}" for n in range(3)}

    report = await world.sync()

    assert report.ok, report.failures
    assert sorted(report.users_created) == sorted(names)
    assert sorted(report.rooms_created) == sorted(names)
    space_id = space_file(world)["space_id"]
    assert space_id == report.space_id
    create = world.state(space_id, "m.room.create")
    assert create is not None and create.get("type") == "m.space"
    assert world.joined(space_id) >= {world.admin_id, world.bot_id}
    for agent_id, name in names.items():
        assert_agent_in_order(world, agent_id, name, space_id)


async def second_sync_creates_nothing(world: World) -> None:
    agent_id = world.letta.add_agent("Steady agent")
    await world.sync()
    user_id = mappings(world)[agent_id]["matrix_user_id"]
    devices = world.devices(user_id)
    before = mappings(world)

    report = await world.sync()

    assert report.ok, report.failures
    assert not report.users_created and not report.rooms_created and not report.repaired
    assert not report.space_created
    assert mappings(world) == before
    assert world.devices(user_id) == devices


async def rename_follows_on_next_sync(world: World) -> None:
    agent_id = world.letta.add_agent("Old name")
    first = await world.sync()
    world.letta.rename(agent_id, "New name")

    report = await world.sync()

    assert report.renamed == [agent_id]
    assert first.space_id is not None
    assert_agent_in_order(world, agent_id, "New name", first.space_id)


async def room_left_by_the_agent_and_the_admin_is_replaced(world: World) -> None:
    """The admin no longer sees the room, and the agent may still read its old state."""
    agent_id = world.letta.add_agent("Deserted")
    first = await world.sync()
    mapping = mappings(world)[agent_id]
    old_room = mapping["room_id"]
    world.leave(mapping["matrix_user_id"], old_room)
    world.leave(world.admin_id, old_room)
    world.leave(world.bot_id, old_room)

    report = await world.sync()

    assert report.ok, report.failures
    assert first.space_id is not None
    new_room = assert_agent_in_order(world, agent_id, "Deserted", first.space_id)
    assert new_room != old_room


def add_conversation(letta: FakeLetta, agent_id: str, label: str) -> list[str]:
    texts = [f"{label}: a question", f"{label}: an answer", f"{label}: another question"]
    for n, text in enumerate(texts):
        letta.add_message(agent_id, "user_message" if n % 2 == 0 else "assistant_message", text)
    return texts


async def room_found_after_a_lost_create_reply_gets_its_history_once(world: World) -> None:
    """The homeserver made the room, the reply was lost: the agent's second try in the same
    sync finds the room by its tag, and the history lands in it exactly once."""
    await world.sync()  # the space first: its createRoom is not the one to lose
    agent_id = world.letta.add_agent("Recovered")
    texts = add_conversation(world.letta, agent_id, "Recovered")

    lost = await world.sync(wrap=lambda t: LosingReplies(t, "POST", "/createRoom"))
    again = await world.sync()

    assert lost.ok and again.ok, (lost.failures, again.failures)
    assert not lost.rooms_created and not again.rooms_created and not again.history_imported
    assert lost.history_imported == {agent_id: len(texts)}
    room_id = mappings(world)[agent_id]["room_id"]
    assert world.imported_history(room_id) == texts
    assert world.joined_rooms(mappings(world)[agent_id]["matrix_user_id"]) == [room_id]


async def an_oversized_message_is_shortened_to_fit_one_event(world: World) -> None:
    agent_id = world.letta.add_agent("Verbose")
    words, smiles = "word " * 14_000, "🙂" * 20_000  # 70,000 characters; 80,000 bytes
    world.letta.add_message(agent_id, "user_message", "a short question")
    world.letta.add_message(agent_id, "assistant_message", words)
    world.letta.add_message(agent_id, "assistant_message", smiles)

    report = await world.sync()
    again = await world.sync()

    assert report.ok and again.ok, (report.failures, again.failures)
    assert report.history_imported == {agent_id: 3} and not again.history_imported
    short, cut_words, cut_smiles = world.imported_history(mappings(world)[agent_id]["room_id"])
    assert short == "a short question"
    for cut, full in ((cut_words, words), (cut_smiles, smiles)):
        kept = cut.removesuffix(SHORTENED_MARKER)
        assert cut.endswith(SHORTENED_MARKER) and full.startswith(kept)
        # The longest prefix that fits, give or take the envelope the homeserver adds.
        assert 63_000 < len(cut.encode("utf-8")) < 65_536


SCENARIOS = [
    full_sync_from_empty_state,
    second_sync_creates_nothing,
    rename_follows_on_next_sync,
    room_left_by_the_agent_and_the_admin_is_replaced,
    room_found_after_a_lost_create_reply_gets_its_history_once,
    an_oversized_message_is_shortened_to_fit_one_event,
]
