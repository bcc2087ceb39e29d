"""`SyncHarness`: a `SyncService` wired to the in-process fake homeserver and fake Letta.

Everything goes through the real `HttpxTransport` over `httpx.MockTransport(router.async_handler)`
with `router = respx.MockRouter(using=None)`: nothing is patched, and a bridge's own respx
routes can be added to the same router.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import respx

from app.config import SyncConfig
from app.http.httpx_transport import HttpxTransport
from app.identity.registration import (
    AppserviceRegistration,
    load_registration,
    new_registration,
    render,
    write_private,
)
from app.sync.report import SyncReport
from app.sync.service import SyncService
from app.testing.clock import FakeClock
from app.testing.fake_http import Override
from app.testing.homeserver import FakeHomeserver
from app.testing.letta import FakeLetta

BOT = "letta"
ADMIN = "admin"


@dataclass
class SyncHarness:
    data_dir: Path
    homeserver: FakeHomeserver = field(default_factory=lambda: FakeHomeserver(seed=1))
    letta: FakeLetta = field(default_factory=FakeLetta)
    router: respx.MockRouter = field(
        default_factory=lambda: respx.MockRouter(using=None, assert_all_called=False)
    )
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.homeserver.mount(self.router)
        self.letta.mount(self.router)
        self.base_config = SyncConfig(
            homeserver_url=self.homeserver.base_url,
            username=BOT,
            password="bot-secret-password",
            admin_username=ADMIN,
            admin_password="admin-secret-password",
            letta_url=self.letta.base_url,
            data_dir=self.data_dir,
        )

    def use_appservice(self, *, close_registration: bool = True) -> AppserviceRegistration:
        """Switch to appservice mode, as an operator would: write a registration (once, next
        to the data directory), load it into the fake homeserver, close registration there,
        and drop the bot's and the admin's passwords from the config."""
        path = self.data_dir.parent / "appservice-registration.yaml"
        if not path.exists():
            server_name = self.homeserver.server_name
            write_private(path, render(new_registration(server_name, BOT, ADMIN)))
        registration = load_registration(path)
        self.homeserver.load_appservice(registration)
        if close_registration:
            self.homeserver.close_registration()
        self.base_config = replace(
            self.base_config, password="", admin_password=None, appservice_registration=path
        )
        return registration

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.homeserver.server_name}"

    @property
    def admin_id(self) -> str:
        return self.user_id(ADMIN)

    @property
    def bot_id(self) -> str:
        return self.user_id(BOT)

    def override(self, kind: str, answer: Override | None) -> respx.Route:
        """Answer one endpoint of either fake with ``answer`` instead of the fake.

        ``kind`` is an endpoint kind of the homeserver or of Letta (``"send"``,
        ``"createRoom"``, ``"list_agents"``, ...: ``homeserver.kinds``, ``letta.kinds``).
        ``answer`` is an ``httpx.Response``, an exception to raise, or a function
        ``(httpx.Request) -> httpx.Response | None`` (``None``: the fake answers that request);
        ``None`` gives the endpoint back to the fake. Returns the endpoint's respx route, whose
        ``calls`` hold every request of that kind. Routes added to :attr:`router` for the
        fakes' own URLs never fire (respx answers with the first matching route, the fake's):
        this is the way to take an endpoint over.
        """
        for fake in (self.homeserver, self.letta):
            if kind in fake.kinds:
                fake.override(kind, answer)
                return self.router.routes[kind]
        known = ", ".join([*self.homeserver.kinds, *self.letta.kinds])
        raise ValueError(f"unknown endpoint kind {kind!r}; known: {known}")

    def transport(self) -> HttpxTransport:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.router.async_handler))
        return HttpxTransport(client)

    def config(self, **overrides: Any) -> SyncConfig:
        return replace(self.base_config, **overrides)

    def service(self, **overrides: Any) -> SyncService:
        return SyncService(
            self.config(**overrides), self.transport(), pacing=self.clock.pacing(), durable=False
        )

    async def sync(self, **overrides: Any) -> SyncReport:
        """One full sync through a fresh service, as a new process would run it."""
        async with self.service(**overrides) as service:
            return await service.sync()
