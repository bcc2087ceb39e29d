"""Appservice mode on a production-shaped Synapse: registration closed, default rate limits,
this library's registration loaded (issue 9's "done when")."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app import SyncService
from app.cli import main
from app.http.httpx_transport import HttpxTransport
from app.http.transport import Request, Response, Transport
from app.identity.registration import load_registration
from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer
from app.testing.synapse.appservice import appservice_config

from worlds import SynapseWorld, mappings

pytestmark = pytest.mark.anyio


@dataclass
class Recording:
    """Every Matrix request of a run: (method, path) and the statuses answered."""

    inner: Transport
    homeserver: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    async def send(self, request: Request) -> Response:
        response = await self.inner.send(request)
        if request.url.startswith(self.homeserver):
            self.requests.append((request.method, urlsplit(request.url).path))
            self.statuses[response.status] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def cli_sync(world: SynapseWorld) -> tuple[int, Recording, str]:
    recording = Recording(HttpxTransport(), world.config.homeserver_url)
    c = world.config
    env = {
        "MATRIX_HOMESERVER_URL": c.homeserver_url,
        "MATRIX_USERNAME": c.username,
        "MATRIX_ADMIN_USERNAME": c.admin_username or "",
        "LETTA_API_URL": c.letta_url,
        "MATRIX_DATA_DIR": str(c.data_dir),
        "MATRIX_APPSERVICE_REGISTRATION": str(c.appservice_registration),
    }
    out, err = io.StringIO(), io.StringIO()
    code = main(["sync", "--json"], env=env, transport=recording, out=out, err=err)
    return code, recording, err.getvalue()


def test_thirty_agents_from_nothing_then_a_steady_sync(appservice_world: SynapseWorld) -> None:
    world = appservice_world
    agents = [world.letta.add_agent(f"Production agent {n}") for n in range(30)]

    code, first, err = cli_sync(world)
    again_code, again, _ = cli_sync(world)

    assert code == 0, err
    assert first.statuses[429] == 0 and again.statuses[429] == 0
    assert not any(path.endswith("/login") for _, path in first.requests + again.requests)
    stored = mappings(world)
    assert sorted(stored) == sorted(agents)
    for mapping in stored.values():
        assert world.devices(mapping["matrix_user_id"]) == 0
        assert mapping["matrix_password"] == ""
        assert {mapping["matrix_user_id"], world.admin_id, world.bot_id} <= world.joined(
            mapping["room_id"]
        )
    # Synapse keeps no account row for the sender (its admin API says "Unknown user"): it
    # acts through the as_token alone, so it cannot have a device either.
    assert world.devices(world.admin_id) == 0
    assert not world.has_user(world.bot_id) or world.devices(world.bot_id) == 0
    assert again_code == 0 and len(again.requests) <= 5, again.requests
    assert mappings(world) == stored


async def test_bridge_posts_as_an_agent(appservice_world: SynapseWorld) -> None:
    world = appservice_world
    agent_id = world.letta.add_agent("Talker")
    assert (await world.sync()).ok
    room_id = mappings(world)[agent_id]["room_id"]
    user_id = mappings(world)[agent_id]["matrix_user_id"]
    await _post_as_agent(world, agent_id, "hello from the bridge")
    last = world.messages(room_id)[-1]
    assert (last["sender"], last["content"]["body"]) == (user_id, "hello from the bridge")
    assert world.devices(user_id) == 0


async def test_password_bridge_posts_as_an_agent(synapse_world: SynapseWorld) -> None:
    world = synapse_world
    agent_id = world.letta.add_agent("Password talker")
    assert (await world.sync()).ok
    user_id = mappings(world)[agent_id]["matrix_user_id"]
    devices = world.devices(user_id)
    await _post_as_agent(world, agent_id, "hello with a stored token")
    last = world.messages(mappings(world)[agent_id]["room_id"])
    assert (last[-1]["sender"], last[-1]["content"]["body"]) == (
        user_id,
        "hello with a stored token",
    )
    assert world.devices(user_id) == devices  # the stored token, no new login


async def _post_as_agent(world: SynapseWorld, agent_id: str, text: str) -> None:
    transport = HttpxTransport()
    try:
        async with SyncService(world.config, transport) as service:
            client = await service.agent_client(agent_id)
            await client.send_text(mappings(world)[agent_id]["room_id"], text)
    finally:
        await transport.aclose()


async def test_password_deployment_switched_to_appservice_mode_converges(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """Migration as an operator does it: a password-mode deployment, then the registration
    written by the library's command, loaded by a restarted Synapse with registration closed
    and default rate limits; the next sync adopts everything."""
    letta = FakeLetta()
    server = SynapseServer(tmp_path / "synapse")
    with LettaHTTPServer(letta.handle) as http, server:
        world = SynapseWorld(server, letta, http.base_url, tmp_path / "data")
        agents = [letta.add_agent(f"Migrating {n}") for n in range(3)]
        assert (await world.sync()).ok
        before = mappings(world)
        users = {m["matrix_user_id"]: world.devices(m["matrix_user_id"]) for m in before.values()}
        registration_path = tmp_path / "registration.yaml"
        env = {"MATRIX_USERNAME": world.config.username}
        env["MATRIX_ADMIN_USERNAME"] = world.config.admin_username or ""
        argv = ["registration", "--server-name", server.server_name, "--output"]
        out, err = io.StringIO(), io.StringIO()
        assert main([*argv, str(registration_path)], env=env, out=out, err=err) == 0
        server.stop()
        text = server.config_path.read_text()
        server.config_path.write_text(appservice_config(text, registration_path))
        server.start()
        world.registration = load_registration(registration_path)
        switched = {"password": "", "admin_password": None}

        report = await world.sync(appservice_registration=registration_path, **switched)

        assert report.ok, report.failures
        assert not report.users_created and not report.rooms_created and not report.space_created
        assert mappings(world) == before  # passwords kept for the bridge
        for user_id, devices in users.items():
            assert world.devices(user_id) == devices
        world.config = replace(world.config, appservice_registration=registration_path, **switched)
        for agent_id in agents:
            await _post_as_agent(world, agent_id, "adopted")
            room = before[agent_id]["room_id"]
            last = world.messages(room)[-1]
            assert (last["sender"], last["content"]["body"]) == (
                before[agent_id]["matrix_user_id"],
                "adopted",
            )
        assert json.loads((world.data_dir / "agent_user_mappings.json").read_text()) == before
