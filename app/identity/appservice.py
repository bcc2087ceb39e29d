"""Appservice mode: the registration's `as_token` acts for every user of its namespace.

In appservice mode (`MATRIX_APPSERVICE_REGISTRATION`) the bot is the registration's sender,
and the admin and the agents are users of its namespace: registered with
`m.login.application_service` (no password, no device), then acted as with the `as_token` and
`user_id=`. Nothing logs in. A core user outside the namespace still uses its password, through
the `PasswordIdentity` this one holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from app.errors import ConfigError, MatrixExclusive, MatrixForbidden, MatrixUnknownToken
from app.identity.naming import agent_user_id
from app.identity.password import PasswordIdentity
from app.identity.protocol import CoreLogin, Settings
from app.identity.refusals import wrong_server
from app.identity.registration import SETTING, AppserviceRegistration
from app.letta import Agent
from app.matrix import MatrixClient
from app.matrix.appservice import acting_as, register_appservice_user
from app.matrix.ids import localpart_of, server_name_of, user_id_from
from app.state import Store

log = logging.getLogger(__name__)


class AppserviceIdentity:
    """Same questions as `PasswordIdentity`, answered without any login."""

    adopts_existing_users = True

    def __init__(
        self, anonymous: MatrixClient, store: Store, registration: AppserviceRegistration
    ) -> None:
        self._anonymous = anonymous
        self.registration = registration
        # For a core user outside the namespace, which keeps its password; it shares the
        # server name this identity learns (one `whoami`, and refusals naming full user ids).
        self._passwords = PasswordIdentity(anonymous, store)
        self._passwords.server_name = _known_server_name(store)

    @property
    def server_name(self) -> str | None:
        return self._passwords.server_name

    @server_name.setter
    def server_name(self, name: str | None) -> None:
        self._passwords.server_name = name

    def acting_as(self, user_id: str) -> MatrixClient:
        return acting_as(self._anonymous, self.registration.as_token, user_id)

    def new_agent_password(self) -> str:
        return ""  # an appservice user has no password; none is made or stored

    async def homeserver_name(self) -> str:
        """The server name, asked once (`whoami` as the sender) unless the state shows it."""
        if self.server_name is None:
            sender = self._anonymous.as_user(None, self.registration.as_token)
            self.server_name = server_name_of(await sender.whoami())
        return self.server_name

    async def user_id_of(self, login: str) -> str:
        return user_id_from(login, await self.homeserver_name())

    async def ensure_core_user(self, login: CoreLogin) -> MatrixClient:
        """The bot, admin or MCP account as the appservice; a password where it cannot be."""
        user_id = await self.user_id_of(login.login)
        server_name = await self.homeserver_name()
        if server_name_of(user_id).lower() != server_name.lower():
            raise wrong_server(login.login, login.settings.user, server_name)
        if not self.registration.controls(user_id):
            if not login.password:
                raise self._outside_namespace(login, user_id)
            return await self._passwords.ensure_core_user(login)
        if localpart_of(user_id) != self.registration.sender_localpart:
            await self._register(user_id)
        client = self.acting_as(user_id)
        self._passwords.inspector = self._passwords.inspector or client
        return client

    def _outside_namespace(self, login: CoreLogin, user_id: str) -> ConfigError:
        settings: Settings = login.settings
        return ConfigError(
            f"{settings.user}={login.login} is outside the appservice namespace of "
            f"{SETTING}={self.registration.path}: add {user_id} to its "
            f"namespaces.users (and reload the homeserver), or set {settings.password}"
        )

    def stored(
        self, login: str, password: str, settings: Settings | None = None
    ) -> MatrixClient | None:
        # A user of the namespace may not exist yet: let the caller register it.
        user_id = login if login.startswith("@") else None
        if user_id is None and self.server_name is not None:
            user_id = user_id_from(login, self.server_name)
        if user_id is not None and self.registration.controls(user_id):
            return None
        return self._passwords.stored(login, password, settings)

    async def agent_client(self, user_id: str, password: str) -> MatrixClient:
        return self.acting_as(user_id)

    async def register_agent(self, user_id: str, password: str) -> tuple[MatrixClient, bool]:
        """Register the agent user as the appservice; an existing one (M_USER_IN_USE) is
        adopted as it is, whoever made it."""
        created = await self._register(user_id)
        return self.acting_as(user_id), created

    async def _register(self, user_id: str) -> bool:
        localpart = localpart_of(user_id)  # what the register request names
        try:
            created = await register_appservice_user(
                self._anonymous, self.registration.as_token, localpart
            )
        except MatrixExclusive as exc:
            raise ConfigError(
                f"the homeserver does not let the appservice register {localpart}: its copy of "
                f"{SETTING}={self.registration.path} does not cover that name (was the file "
                "edited without restarting the homeserver?)"
            ) from exc
        if created:
            log.info("registered %s as the appservice", localpart)
        return created

    def refuse_uncovered_agents(self, store: Store, agents: Sequence[Agent]) -> None:
        """`ConfigError` when the namespace leaves out an agent's user: the appservice could
        neither register nor act as it."""
        server_name = self.server_name or ""
        uncovered = []
        for agent in agents:
            mapping = store.get(agent.id)
            user_id = (
                mapping.matrix_user_id
                if mapping is not None and mapping.matrix_user_id
                else agent_user_id(agent.id, server_name)
            )
            if not self.registration.covers(user_id):
                uncovered.append(user_id)
        if uncovered:
            more = f" and {len(uncovered) - 3} more" if uncovered[3:] else ""
            shown = ", ".join(uncovered[:3]) + more
            raise ConfigError(
                f"the appservice namespace of {SETTING}={self.registration.path} does not "
                f"cover these agent users: {shown}. Add a namespaces.users regex for them (and "
                "reload the homeserver); nothing was changed"
            )

    @contextmanager
    def explaining_refusals(self) -> Iterator[None]:
        """Setup refused for the appservice itself: say which file the homeserver does not
        know."""
        path = self.registration.path
        try:
            yield
        except MatrixUnknownToken as exc:
            raise ConfigError(
                f"the homeserver refuses the as_token of {SETTING}={path} "
                f"(HTTP {exc.status} {exc.errcode}): list that file in homeserver.yaml's "
                "app_service_config_files and restart the homeserver, or point the setting at "
                "the file it loaded"
            ) from exc
        except MatrixForbidden as exc:
            if "application service" not in (exc.error or "").lower():
                raise
            raise ConfigError(
                f"the homeserver refuses to let the appservice of {SETTING}={path} act as a "
                f"user ({exc.error}): its copy of the registration differs from the file; "
                "restart the homeserver after editing it"
            ) from exc

    async def read_only_admin(self, login: CoreLogin) -> MatrixClient | None:
        """The admin as the appservice acts as it, for a dry run (at most one read, `whoami`);
        None when the namespace leaves the admin out."""
        with self.explaining_refusals():
            user_id = await self.user_id_of(login.login)
        return self.acting_as(user_id) if self.registration.controls(user_id) else None

    def read_only_agent(self, user_id: str) -> MatrixClient | None:
        """A user of the namespace as the appservice acts as it, for a dry run (no request)."""
        return self.acting_as(user_id) if self.registration.controls(user_id) else None


def _known_server_name(store: Store) -> str | None:
    """The server name the state files already show (saves a `whoami` on steady syncs)."""
    for mapping in store.all():
        server_name = server_name_of(mapping.matrix_user_id)
        if server_name:
            return server_name
    return None
