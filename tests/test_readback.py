"""The fake homeserver's read-back helpers, as a bridge's tests use them after a sync."""

from __future__ import annotations

import dataclasses

import pytest

from app.matrix import MatrixClient
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver, StateEntry
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio


async def synced_agent(sync_harness: SyncHarness, name: str) -> tuple[str, str]:
    """Sync one new agent; return its Matrix user id and room id."""
    agent_id = sync_harness.letta.add_agent(name)
    report = await sync_harness.sync()
    assert report.ok, report.failures
    async with sync_harness.service() as service:
        mapping = service.mapping(agent_id)
    assert mapping is not None and mapping.room_id is not None
    return mapping.matrix_user_id, mapping.room_id


async def test_messages_lists_the_timeline_in_order_with_sender_body_and_event_id(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver, fake_letta: FakeLetta
) -> None:
    agent_id = fake_letta.add_agent("Historian")
    fake_letta.add_message(agent_id, "user_message", "hello")
    fake_letta.add_message(agent_id, "assistant_message", "hi there")
    await sync_harness.sync()
    async with sync_harness.service() as service:
        mapping = service.mapping(agent_id)
    assert mapping is not None and mapping.room_id is not None
    agent = mapping.matrix_user_id
    client = MatrixClient.connect(
        sync_harness.transport(), fake_homeserver.base_url, pacing=sync_harness.clock.pacing()
    )
    admin = client.as_user(sync_harness.admin_id, fake_homeserver.user_token(sync_harness.admin_id))
    sent = await admin.send_event(mapping.room_id, {"msgtype": "m.notice", "body": "from admin"})

    messages = fake_homeserver.messages(mapping.room_id)

    assert [(m.sender, m.text) for m in messages] == [
        (agent, "hello"),
        (agent, "hi there"),
        (sync_harness.admin_id, "from admin"),
    ]
    assert messages[-1].event_id == sent and messages[-1].content["msgtype"] == "m.notice"
    assert len({m.event_id for m in messages}) == 3
    assert all(m.event_type == "m.room.message" for m in messages)


async def test_a_message_is_a_frozen_copy(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver
) -> None:
    alice = fake_homeserver.register_user("alice", "pw")
    room_id = fake_homeserver.create_room(alice)
    client = MatrixClient.connect(
        sync_harness.transport(), fake_homeserver.base_url, pacing=sync_harness.clock.pacing()
    )
    as_alice = client.as_user(alice, fake_homeserver.user_token(alice))
    await as_alice.send_event(room_id, {"body": 7}, event_type="org.example.count")

    [message] = fake_homeserver.messages(room_id)

    assert (message.sender, message.body, message.event_type) == (alice, None, "org.example.count")
    assert message.content == {"body": 7}
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.body = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        message.content["body"] = "changed"  # type: ignore[index]
    assert fake_homeserver.messages(room_id) == [message]


def test_messages_of_an_unknown_room_raise_key_error(fake_homeserver: FakeHomeserver) -> None:
    with pytest.raises(KeyError):
        fake_homeserver.messages("!nowhere")


async def test_members_state_and_state_events_after_a_sync(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver
) -> None:
    agent, room_id = await synced_agent(sync_harness, "Meridian")
    space_id = (await sync_harness.sync()).space_id
    assert space_id is not None

    members = fake_homeserver.members(room_id)
    children = fake_homeserver.state_events(space_id, "m.space.child")

    assert members == {agent: "join", sync_harness.admin_id: "join", sync_harness.bot_id: "join"}
    assert fake_homeserver.state(room_id, "m.room.name") == {"name": "Meridian"}
    assert fake_homeserver.state(room_id, "m.room.avatar") is None
    assert [(c.state_key, c.sender) for c in children] == [(room_id, sync_harness.admin_id)]
    assert children[0].content["via"] == ["localhost"]
    everything = fake_homeserver.state_events(room_id)
    assert everything[0].event_type == "m.room.create" and everything[0].sender == agent
    member_keys = {e.state_key for e in everything if e.event_type == "m.room.member"}
    assert member_keys == set(members)


def test_state_entries_do_not_change_with_the_room(fake_homeserver: FakeHomeserver) -> None:
    alice = fake_homeserver.register_user("alice", "pw")
    room_id = fake_homeserver.create_room(alice, {"name": "Before"})
    [before] = fake_homeserver.state_events(room_id, "m.room.name")

    fake_homeserver.set_state(room_id, "m.room.name", {"name": "After"})

    assert before == StateEntry("m.room.name", "", alice, {"name": "Before"}, before.event_id)
    [after] = fake_homeserver.state_events(room_id, "m.room.name")
    assert after.content == {"name": "After"} and after.event_id != before.event_id


def test_nested_state_read_back_is_detached_from_the_fake(fake_homeserver: FakeHomeserver) -> None:
    alice = fake_homeserver.register_user("alice", "pw")
    room_id = fake_homeserver.create_room(alice)
    [entry] = fake_homeserver.state_events(room_id, "m.room.power_levels")

    entry.content["events"]["m.room.name"] = 0
    levels = fake_homeserver.state(room_id, "m.room.power_levels")
    levels["events"]["m.room.name"] = 1  # type: ignore[index]

    assert fake_homeserver.room(room_id).required_level("m.room.name", is_state=True) == 50


async def test_devices_lists_one_device_per_registration_and_login(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver
) -> None:
    agent, _ = await synced_agent(sync_harness, "Meridian")
    [registered] = fake_homeserver.devices(agent)
    client = MatrixClient.connect(
        sync_harness.transport(), fake_homeserver.base_url, pacing=sync_harness.clock.pacing()
    )

    await client.login(agent, fake_homeserver.password(agent))

    devices = fake_homeserver.devices(agent)
    assert devices[0] == registered and len(devices) == 2
    await sync_harness.sync()
    assert fake_homeserver.devices(agent) == devices  # a sync re-uses the stored token
