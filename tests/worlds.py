"""Two worlds the same scenarios run in: the in-process fakes and a real Synapse.

A world runs syncs and answers questions about what the homeserver holds, so a scenario
asserts outcomes and never how many times something was called.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from app import SyncConfig, SyncReport, SyncService, Transport
from app.cli import main
from app.http import Pacing
from app.http.httpx_transport import HttpxTransport
from app.identity.registration import AppserviceRegistration
from app.sync.history import HISTORICAL_KEY, spoken_text
from app.testing.fake_http import FakeRequest
from app.testing.harness import SyncHarness
from app.testing.letta import FakeLetta
from app.testing.synapse import SynapseError, SynapseServer

from helpers import cli_env

Wrap = Callable[[Transport], Transport]
# Admins of appservice worlds: the contract tier's registration adds this namespace.
AS_ADMIN_PREFIX = "asadmin"


class World(Protocol):
    letta: FakeLetta
    data_dir: Path
    admin_id: str
    bot_id: str
    server_name: str

    async def sync(self, *, wrap: Wrap | None = None, **overrides: Any) -> SyncReport:
        """One sync; `wrap` puts a faulty transport around the real one."""
        ...

    def imported_history(self, room_id: str) -> list[str]:
        """Texts of the history-import messages in the room, oldest first (a user's line
        without its label: `spoken_text`)."""
        ...

    def joined_rooms(self, user_id: str) -> list[str]:
        """The rooms the user is joined to, as the homeserver says."""
        ...

    def joined(self, room_id: str) -> set[str]: ...

    def state(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None: ...

    def displayname(self, user_id: str) -> str | None: ...

    def devices(self, user_id: str) -> int: ...

    def leave(self, user_id: str, room_id: str) -> None: ...

    def has_user(self, user_id: str) -> bool: ...

    def deactivate(self, user_id: str) -> None: ...

    def change_password(self, user_id: str, password: str) -> None: ...

    def make_server_admin(self, user_id: str) -> None: ...

    def cli(self, *argv: str, **env: str) -> tuple[int, str, list[str]]:
        """`letta-matrix-sync` in-process with this world's settings, `env` overriding them:
        exit code, stdout and the lines written to stderr."""
        ...

    def new_person(self, name: str) -> str:
        """Register a person (no server admin) and return their user id."""
        ...

    def act(self, user_id: str, method: str, path: str, body: Any = None) -> Any:
        """A client-API request as `user_id` (a person, the admin or an agent user), as a
        person would make it by hand: `path` starts at /_matrix; raises unless it succeeds."""
        ...

    @property
    def homeserver_url(self) -> str: ...

    @property
    def appservice(self) -> bool:
        """Appservice mode: agents act through the as_token, with no password."""
        ...


def mappings(world: World) -> dict[str, Any]:
    return dict(json.loads((world.data_dir / "agent_user_mappings.json").read_text()))


def space_file(world: World) -> dict[str, Any]:
    return dict(json.loads((world.data_dir / "letta_space_config.json").read_text()))


def run_main(
    argv: tuple[str, ...], env: dict[str, str], transport: Transport | None, pacing: Pacing | None
) -> tuple[int, str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env, transport=transport, out=out, err=err, pacing=pacing)
    return code, out.getvalue(), err.getvalue().splitlines()


class FakeWorld:
    def __init__(self, harness: SyncHarness) -> None:
        self.harness = harness
        self.letta = harness.letta
        self.data_dir = harness.data_dir
        self.admin_id = harness.admin_id
        self.bot_id = harness.bot_id
        self.server_name = harness.homeserver.server_name

    async def sync(self, *, wrap: Wrap | None = None, **overrides: Any) -> SyncReport:
        if wrap is None:
            return await self.harness.sync(**overrides)
        h = self.harness
        transport = wrap(h.transport())
        config = h.config(**overrides)
        async with SyncService(config, transport, pacing=h.clock.pacing(), durable=False) as s:
            return await s.sync()

    def joined_rooms(self, user_id: str) -> list[str]:
        hs = self.harness.homeserver
        return [room for room in hs.rooms_of(user_id) if hs.members(room).get(user_id) == "join"]

    def imported_history(self, room_id: str) -> list[str]:
        timeline = self.harness.homeserver.room(room_id).timeline
        return [spoken_text(e.content) for e in timeline if e.content.get(HISTORICAL_KEY)]

    def joined(self, room_id: str) -> set[str]:
        members = self.harness.homeserver.members(room_id)
        return {user for user, state in members.items() if state == "join"}

    def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        return self.harness.homeserver.state(room_id, event_type, state_key)

    def displayname(self, user_id: str) -> str | None:
        return self.harness.homeserver.displayname(user_id)

    def devices(self, user_id: str) -> int:
        return len(self.harness.homeserver.devices(user_id))

    def leave(self, user_id: str, room_id: str) -> None:
        self.harness.homeserver.force_leave(room_id, user_id)

    def has_user(self, user_id: str) -> bool:
        return self.harness.homeserver.has_user(user_id)

    def deactivate(self, user_id: str) -> None:
        self.harness.homeserver.deactivate_user(user_id)

    def change_password(self, user_id: str, password: str) -> None:
        self.harness.homeserver.change_password(user_id, password)

    def make_server_admin(self, user_id: str) -> None:
        self.harness.homeserver.make_server_admin(user_id)

    def cli(self, *argv: str, **env: str) -> tuple[int, str, list[str]]:
        h = self.harness
        return run_main(argv, cli_env(h, **env), h.transport(), h.clock.pacing())

    def new_person(self, name: str) -> str:
        return self.harness.homeserver.register_user(f"{name}{uuid.uuid4().hex[:6]}", "pw")

    def act(self, user_id: str, method: str, path: str, body: Any = None) -> Any:
        hs = self.harness.homeserver
        headers = {"authorization": f"Bearer {hs.user_token(user_id)}"}
        answer = hs.handle(FakeRequest(method, path, {}, headers, body))
        if answer.status != 200:
            raise AssertionError(f"{method} {path} as {user_id} -> {answer.status} {answer.json}")
        return answer.json

    @property
    def homeserver_url(self) -> str:
        return self.harness.homeserver.base_url

    @property
    def appservice(self) -> bool:
        return self.harness.base_config.appservice_registration is not None


class SynapseWorld:
    """A fresh bot, admin and data directory on a shared real Synapse.

    With `registration` (appservice mode) the bot is its sender, shared by every world, and
    the admin a fresh user of its namespace (`AS_ADMIN_PREFIX` + 8 hex digits).
    """

    def __init__(
        self,
        synapse: SynapseServer,
        letta: Any,  # a FakeLetta, or a Letta target of tests/letta_targets.py
        letta_url: str,
        data_dir: Path,
        registration: AppserviceRegistration | None = None,
    ) -> None:
        self.synapse = synapse
        self.letta = letta
        self.data_dir = data_dir
        self.registration = registration
        suffix = uuid.uuid4().hex[:8]
        self.server_name = synapse.server_name
        _, self._inspector = synapse.register_admin(f"inspector{suffix}", "inspector-password")
        self.config = SyncConfig(
            homeserver_url=synapse.base_url,
            username=f"bot{suffix}",
            password="bot-password-" + suffix,
            admin_username=f"admin{suffix}",
            admin_password="admin-password-" + suffix,
            letta_url=letta_url,
            data_dir=data_dir,
        )
        if registration is not None:
            self.config = replace(
                self.config,
                username=registration.sender_localpart,
                password="",
                admin_username=f"{AS_ADMIN_PREFIX}{suffix}",
                admin_password=None,
                appservice_registration=registration.path,
            )
        self.admin_id = f"@{self.config.admin_username}:{self.server_name}"
        self.bot_id = f"@{self.config.username}:{self.server_name}"
        self._people: dict[str, str] = {}  # user id -> access token

    async def sync(self, *, wrap: Wrap | None = None, **overrides: Any) -> SyncReport:
        transport = HttpxTransport()
        try:
            wrapped = transport if wrap is None else wrap(transport)
            async with SyncService(replace(self.config, **overrides), wrapped) as service:
                return await service.sync()
        finally:
            await transport.aclose()

    def joined_rooms(self, user_id: str) -> list[str]:
        return self.synapse.user_joined_rooms(user_id, self._inspector)

    def imported_history(self, room_id: str) -> list[str]:
        events = self.synapse.room_messages(room_id, self._inspector)
        return [
            spoken_text(e["content"])
            for e in events
            if e.get("type") == "m.room.message" and e.get("content", {}).get(HISTORICAL_KEY)
        ]

    def joined(self, room_id: str) -> set[str]:
        return set(self.synapse.room_members(room_id, self._inspector))

    def messages(self, room_id: str) -> list[dict[str, Any]]:
        """The room's events, oldest first, as the admin API lists them."""
        return self.synapse.room_messages(room_id, self._inspector)

    def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        for event in self.synapse.room_state(room_id, self._inspector):
            if event.get("type") == event_type and event.get("state_key") == state_key:
                return dict(event.get("content") or {})
        return None

    def displayname(self, user_id: str) -> str | None:
        return self.synapse.user_displayname(user_id, self._inspector)

    def devices(self, user_id: str) -> int:
        return self.synapse.count_devices(user_id, self._inspector)

    def has_user(self, user_id: str) -> bool:
        try:
            self._admin("GET", "v2/users", user_id)
        except SynapseError as exc:
            if "-> 404" in str(exc):
                return False
            raise
        return True

    def deactivate(self, user_id: str) -> None:
        self._admin("POST", "v1/deactivate", user_id, {"erase": False})
        # Synapse parts the user from its rooms in the background: wait until it has, as an
        # operator would see it, so the next read of the rooms shows the leave.
        deadline = time.monotonic() + 20
        while self.joined_rooms(user_id) and time.monotonic() < deadline:
            time.sleep(0.1)  # a wait on a real server process, not a unit test's clock

    def change_password(self, user_id: str, password: str) -> None:
        body = {"new_password": password, "logout_devices": True}
        self._admin("POST", "v1/reset_password", user_id, body)

    def make_server_admin(self, user_id: str) -> None:
        self._admin("PUT", "v2/users", user_id, {"admin": True})

    def cli(self, *argv: str, **env: str) -> tuple[int, str, list[str]]:
        c = self.config
        settings = {
            "MATRIX_HOMESERVER_URL": c.homeserver_url,
            "MATRIX_USERNAME": c.username,
            "MATRIX_PASSWORD": c.password,
            "MATRIX_ADMIN_USERNAME": c.admin_username or "",
            "MATRIX_ADMIN_PASSWORD": c.admin_password or "",
            "LETTA_API_URL": c.letta_url,
            "MATRIX_DATA_DIR": str(c.data_dir),
            "MATRIX_APPSERVICE_REGISTRATION": str(c.appservice_registration or ""),
        }
        return run_main(argv, {**settings, **env}, None, None)

    def new_person(self, name: str) -> str:
        user_id, token = self.synapse.register_admin(f"{name}{uuid.uuid4().hex[:6]}", "pw-person")
        self._admin("PUT", "v2/users", user_id, {"admin": False})
        self._people[user_id] = token
        return user_id

    def act(self, user_id: str, method: str, path: str, body: Any = None) -> Any:
        quoted = "/".join(quote(part, safe="_") for part in path.split("/"))
        if user_id in self._people:
            return self.synapse.request(method, quoted, body, token=self._people[user_id])
        if self.registration is not None:
            query = f"?user_id={quote(user_id, safe='')}"
            return self.synapse.request(method, quoted + query, body, self.registration.as_token)
        tokens = json.loads((self.data_dir / "access_tokens.json").read_text())
        return self.synapse.request(method, quoted, body, token=tokens[user_id]["access_token"])

    @property
    def homeserver_url(self) -> str:
        return self.synapse.base_url

    @property
    def appservice(self) -> bool:
        return self.registration is not None

    def _admin(self, method: str, prefix: str, user_id: str, body: Any = None) -> Any:
        path = f"/_synapse/admin/{prefix}/{quote(user_id, safe='')}"
        return self.synapse.request(method, path, body, token=self._inspector)

    def leave(self, user_id: str, room_id: str) -> None:
        path = f"/_matrix/client/v3/rooms/{room_id.replace('!', '%21')}/leave"
        if self.registration is not None:
            path += f"?user_id={quote(user_id, safe='')}"
            token = self.registration.as_token
        else:
            tokens = json.loads((self.data_dir / "access_tokens.json").read_text())
            token = tokens[user_id]["access_token"]
        self.synapse.request("POST", path, {}, token=token)
