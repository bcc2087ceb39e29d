"""Appservice mode on the fake homeserver (registration closed): no logins, no devices, no
passwords for new agents, adoption of a password-mode deployment, and the bridge's clients."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest

from app import SyncService
from app.errors import ConfigError, SyncError
from app.identity import identity_for
from app.identity.naming import agent_localpart
from app.matrix import MatrixClient
from app.state import MappingStore
from app.testing.counting import StatusCounter
from app.testing.harness import SyncHarness

from worlds import FakeWorld

pytestmark = pytest.mark.anyio


def stored_mappings(h: SyncHarness) -> dict[str, dict[str, object]]:
    return dict(json.loads((h.data_dir / "agent_user_mappings.json").read_text()))


async def test_first_sync_makes_no_login_no_device_and_no_password(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.use_appservice()
    agents = [h.letta.add_agent(f"Agent {n}") for n in range(4)]

    report = await h.sync()

    assert report.ok, report.failures
    assert sorted(report.users_created) == sorted(agents)
    hs = h.homeserver
    assert hs.logins == 0 and hs.devices_created == 0
    for agent_id, mapping in stored_mappings(h).items():
        user_id = str(mapping["matrix_user_id"])
        assert mapping["matrix_password"] == ""
        assert hs.devices(user_id) == [] and hs.password(user_id) == ""
        assert hs.displayname(user_id) == h.letta.agent(agent_id).name
        assert hs.members(str(mapping["room_id"]))[user_id] == "join"
    # The admin was registered by the appservice too; the bot is its sender.
    assert hs.has_user(h.admin_id) and hs.devices(h.admin_id) == []
    assert not (h.data_dir / "access_tokens.json").exists() or not json.loads(
        (h.data_dir / "access_tokens.json").read_text()
    )


async def test_second_sync_changes_nothing_in_at_most_five_requests(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.use_appservice()
    for n in range(30):
        h.letta.add_agent(f"Agent {n}")
    first = await h.sync()
    before = Counter(h.homeserver.requests_by_kind)
    files = stored_mappings(h)

    again = await h.sync()

    requests = Counter(h.homeserver.requests_by_kind)
    requests.subtract(before)
    assert first.ok and again.ok, (first.failures, again.failures)
    assert not again.users_created and not again.rooms_created and not again.repaired
    assert sum((+requests).values()) <= 5, +requests
    assert stored_mappings(h) == files
    assert h.homeserver.logins == 0 and h.homeserver.devices_created == 0


async def test_password_deployment_switched_to_appservice_is_adopted(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Old timer")
    assert (await h.sync()).ok
    before = stored_mappings(h)[agent_id]
    users, rooms = set(h.homeserver.user_ids()), set(h.homeserver.room_ids())
    h.use_appservice()

    report = await h.sync()

    assert report.ok, report.failures
    assert not report.users_created and not report.rooms_created and not report.space_created
    assert set(h.homeserver.user_ids()) == users and set(h.homeserver.room_ids()) == rooms
    assert stored_mappings(h)[agent_id] == before  # the password stays for the bridge
    logins = h.homeserver.logins
    async with h.service() as service:
        client = await service.agent_client(agent_id)
        await client.send_text(str(before["room_id"]), "still here")
    assert h.homeserver.logins == logins
    last = h.homeserver.messages(str(before["room_id"]))[-1]
    assert (last.sender, last.body) == (before["matrix_user_id"], "still here")


@pytest.mark.parametrize("mode", ["password", "appservice"])
async def test_bridge_posts_as_agent_bot_and_admin(mode: str, sync_harness: SyncHarness) -> None:
    h = sync_harness
    if mode == "appservice":
        h.use_appservice()
    agent_id = h.letta.add_agent("Speaker")
    assert (await h.sync()).ok
    mapping = MappingStore.read(h.data_dir).get(agent_id)
    assert mapping is not None and mapping.room_id is not None
    devices = h.homeserver.devices_created

    async with h.service() as service:
        for who, client in (
            (mapping.matrix_user_id, await service.agent_client(agent_id)),
            (h.bot_id, await service.bot_client()),
            (h.admin_id, await service.admin_client()),
        ):
            await client.send_text(mapping.room_id, f"hello from {who}")

    posted = [(m.sender, m.body) for m in h.homeserver.messages(mapping.room_id)[-3:]]
    assert posted == [
        (who, f"hello from {who}") for who in (mapping.matrix_user_id, h.bot_id, h.admin_id)
    ]
    assert h.homeserver.devices_created == devices  # stored tokens, or none at all


async def test_password_agent_client_logs_in_once_on_an_expired_token_and_saves_it(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Expiring")
    assert (await h.sync()).ok
    mapping = MappingStore.read(h.data_dir).get(agent_id)
    assert mapping is not None and mapping.room_id is not None
    old = MappingStore.read(h.data_dir).token(mapping.matrix_user_id)
    assert old is not None
    h.homeserver.expire_token(old.access_token)
    logins = h.homeserver.logins

    async with h.service() as service:
        client = await service.agent_client(agent_id)
        await client.send_text(mapping.room_id, "one")
        await client.send_text(mapping.room_id, "two")

    assert h.homeserver.logins == logins + 1
    new = MappingStore.read(h.data_dir).token(mapping.matrix_user_id)
    assert new is not None and new.access_token != old.access_token
    assert [m.body for m in h.homeserver.messages(mapping.room_id)[-2:]] == ["one", "two"]


async def test_agent_client_of_an_unsynced_agent_says_to_sync_first(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.use_appservice()
    async with h.service() as service:
        with pytest.raises(Exception, match="run a sync first"):
            await service.agent_client("agent-never-seen")


async def test_namespace_that_leaves_out_agents_stops_the_sync_unchanged(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    registration = h.use_appservice()
    text = registration.path.read_text().replace("agent_[a-z0-9_]*|", "")
    registration.path.write_text(text)
    agent_id = h.letta.add_agent("Outside")

    with pytest.raises(ConfigError) as caught:
        await h.sync()

    message = str(caught.value)
    assert "MATRIX_APPSERVICE_REGISTRATION" in message and "does not cover" in message
    assert f"@agent_{agent_id.removeprefix('agent-').replace('-', '_')}" in message
    assert MappingStore.read(h.data_dir).get(agent_id) is None
    assert registration.as_token not in message


async def test_no_token_ever_reaches_the_log(
    sync_harness: SyncHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = sync_harness
    registration = h.use_appservice()
    h.letta.add_agent("Quiet")
    caplog.set_level(logging.DEBUG)
    async with h.service() as service:
        report = await service.sync()
        shown = [repr(service.config), repr(await service.bot_client()), repr(registration)]
    assert report.ok, report.failures
    for secret in (registration.as_token, registration.hs_token):
        assert secret not in caplog.text
        assert all(secret not in text for text in shown)


def test_plan_reads_as_the_appservice_and_writes_nothing(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    registration = h.use_appservice()
    env = {"MATRIX_APPSERVICE_REGISTRATION": str(registration.path)}
    env |= {"MATRIX_PASSWORD": "", "MATRIX_ADMIN_PASSWORD": ""}
    h.letta.add_agent("Planned")
    world = FakeWorld(h)

    before_sync = world.cli("plan", "--json", **env)
    assert world.cli("sync", **env)[0] == 0
    h.letta.add_agent("Newcomer")
    users = h.homeserver.user_ids()
    after_sync = world.cli("plan", "--json", **env)

    assert before_sync[0] == 0, before_sync[2]
    assert json.loads(before_sync[1])["matrix_checked"] is False  # no admin user yet
    code, out, err = after_sync
    plan = json.loads(out)
    assert code == 0, err
    assert plan["matrix_checked"] is True and plan["space"] == "keep"
    assert sorted(a["action"] for a in plan["actions"]) == ["create", "ok"]
    assert h.homeserver.user_ids() == users and h.homeserver.logins == 0


async def test_a_core_user_outside_the_namespace_needs_its_password(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.use_appservice()
    h.homeserver.register_user("outsider", "outsider-password")

    with pytest.raises(ConfigError) as caught:
        await h.sync(admin_username="outsider")
    report = await h.sync(admin_username="outsider", admin_password="outsider-password")

    message = str(caught.value)
    assert "MATRIX_ADMIN_USERNAME=outsider" in message and "MATRIX_ADMIN_PASSWORD" in message
    assert report.ok, report.failures
    assert h.homeserver.logins == 1  # the one account without the appservice logged in once


async def test_a_refused_core_user_outside_the_namespace_is_named_in_full_without_extra_requests(
    sync_harness: SyncHarness,
) -> None:
    """The password identity the appservice holds knows the server name the appservice
    learned: no key-server request to find it, and the refusal names the full user id."""
    h = sync_harness
    h.use_appservice()
    h.homeserver.register_user("outsider", "outsider-password")
    counter = StatusCounter(h.transport())
    config = h.config(admin_username="outsider", admin_password="wrong-password")

    with pytest.raises(SyncError) as caught:
        async with SyncService(config, counter, pacing=h.clock.pacing(), durable=False) as s:
            await s.sync()

    assert "@outsider:localhost" in str(caught.value)
    assert [url for url in counter.urls if "/_matrix/key/v2/server" in url] == []


async def test_a_namespace_leaving_out_many_agents_names_three_and_counts_the_rest(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    registration = h.use_appservice()
    registration.path.write_text(registration.path.read_text().replace("agent_[a-z0-9_]*|", ""))
    ids = [h.letta.add_agent(f"Outside {n}") for n in range(5)]

    with pytest.raises(ConfigError) as caught:
        await h.sync()

    listed = str(caught.value).split("cover these agent users: ")[1].split(". Add")[0]
    shown, more = listed.split(" and ")
    named = {h.user_id(agent_localpart(agent_id)) for agent_id in ids}
    assert len(set(shown.split(", ")) & named) == 3 and more == "2 more"
    assert str(caught.value).endswith(
        ". Add a namespaces.users regex for them (and reload the homeserver); nothing was changed"
    )


async def test_a_namespace_user_is_acted_as_never_taken_from_a_token_of_password_mode(
    sync_harness: SyncHarness,
) -> None:
    """Switched from password mode: the admin's old token stays on file, but the appservice
    acts as the admin now; a user outside the namespace still uses its stored token."""
    h = sync_harness
    h.letta.add_agent("Before the switch")
    await h.sync()
    registration = h.use_appservice()
    store = MappingStore.open(h.data_dir)
    store.save_token("@outsider:localhost", "outsider-token", "DEV")
    anonymous = MatrixClient.connect(h.transport(), h.homeserver.base_url)

    identity = identity_for(anonymous, store, registration)

    assert store.token(h.admin_id) is not None  # the old token is there to be (not) taken
    assert identity.stored("admin", "pw") is None
    assert identity.stored(h.admin_id, "pw") is None
    outsider = identity.stored("outsider", "pw")
    assert outsider is not None and outsider.access_token == "outsider-token"
    store.close()
