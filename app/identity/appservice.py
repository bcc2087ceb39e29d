"""Who the library acts as: password logins (`Accounts`) or an application service.

In appservice mode (`MATRIX_APPSERVICE_REGISTRATION`) the bot is the registration's sender,
and the admin and the agents are users of its namespace: registered with
`m.login.application_service` (no password, no device), then acted as with the `as_token` and
`user_id=`. Nothing logs in. A core user outside the namespace still uses its password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from app.config import SyncConfig
from app.errors import ConfigError, MatrixError, MatrixForbidden, MatrixUnknownToken, SyncError
from app.identity.naming import agent_localpart
from app.identity.password import Accounts
from app.identity.refusals import Settings, wrong_server
from app.identity.registration import SETTING, AppserviceRegistration, load_registration
from app.letta import Agent
from app.matrix import MatrixClient
from app.matrix.appservice import acting_as, register_appservice_user
from app.matrix.ids import localpart_of, server_name_of, user_id_from
from app.state import Store

log = logging.getLogger(__name__)


class AppserviceAccounts(Accounts):
    """`Accounts` for appservice mode: same questions, answered without any login."""

    def __init__(
        self, anonymous: MatrixClient, store: Store, registration: AppserviceRegistration
    ) -> None:
        super().__init__(anonymous, store)
        self.registration = registration
        self.server_name = _known_server_name(store)

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
        server_name = await self.homeserver_name()
        return user_id_from(login, server_name)

    async def ensure_core_user(
        self, login: str, password: str, *, settings: Settings
    ) -> MatrixClient:
        """The bot, admin or MCP account as the appservice; a password where it cannot be."""
        user_id = await self.user_id_of(login)
        server_name = await self.homeserver_name()
        if server_name_of(user_id).lower() != server_name.lower():
            raise wrong_server(login, settings.user, server_name)
        if not self.registration.controls(user_id):
            if not password:
                raise ConfigError(
                    f"{settings.user}={login} is outside the appservice namespace of "
                    f"{SETTING}={self.registration.path}: add {user_id} to its "
                    f"namespaces.users (and reload the homeserver), or set {settings.password}"
                )
            return await super().ensure_core_user(login, password, settings=settings)
        if localpart_of(user_id) != self.registration.sender_localpart:
            await self._register(localpart_of(user_id))
        client = self.acting_as(user_id)
        self._inspector = self._inspector or client
        return client

    def stored(
        self, login: str, password: str, settings: Settings | None = None
    ) -> MatrixClient | None:
        # A user of the namespace may not exist yet: let the caller register it.
        user_id = login if login.startswith("@") else None
        if user_id is None and self.server_name is not None:
            user_id = f"@{login}:{self.server_name}"
        if user_id is not None and self.registration.controls(user_id):
            return None
        return super().stored(login, password, settings)

    async def agent_client(self, user_id: str, password: str) -> MatrixClient:
        return self.acting_as(user_id)

    async def register_agent(self, localpart: str, password: str) -> tuple[MatrixClient, bool]:
        """Register the agent user as the appservice; an existing one (M_USER_IN_USE) is
        adopted as it is, whoever made it."""
        user_id = await self.user_id_of(localpart)
        created = await self._register(localpart)
        return self.acting_as(user_id), created

    async def _register(self, localpart: str) -> bool:
        try:
            created = await register_appservice_user(
                self._anonymous, self.registration.as_token, localpart
            )
        except MatrixError as exc:
            if exc.errcode != "M_EXCLUSIVE":
                raise
            raise ConfigError(
                f"the homeserver does not let the appservice register {localpart}: its copy of "
                f"{SETTING}={self.registration.path} does not cover that name (was the file "
                "edited without restarting the homeserver?)"
            ) from exc
        if created:
            log.info("registered %s as the appservice", localpart)
        return created


def _known_server_name(store: Store) -> str | None:
    """The server name the state files already show (saves a `whoami` on steady syncs)."""
    for mapping in store.all():
        server_name = server_name_of(mapping.matrix_user_id)
        if server_name:
            return server_name
    return None


def refuse_uncovered_agents(
    accounts: AppserviceAccounts, store: Store, agents: Sequence[Agent], server_name: str
) -> None:
    """`ConfigError` when the namespace leaves out an agent's user: the appservice could
    neither register nor act as it."""
    uncovered = []
    for agent in agents:
        mapping = store.get(agent.id)
        user_id = (
            mapping.matrix_user_id
            if mapping is not None and mapping.matrix_user_id
            else f"@{agent_localpart(agent.id)}:{server_name}"
        )
        if not accounts.registration.covers(user_id):
            uncovered.append(user_id)
    if uncovered:
        more = f" and {len(uncovered) - 3} more" if uncovered[3:] else ""
        shown = ", ".join(uncovered[:3]) + more
        raise ConfigError(
            f"the appservice namespace of {SETTING}={accounts.registration.path} does not "
            f"cover these agent users: {shown}. Add a namespaces.users regex for them (and "
            "reload the homeserver); nothing was changed"
        )


@contextmanager
def naming_the_registration(registration: AppserviceRegistration | None) -> Iterator[None]:
    """Setup refused for the appservice itself: say which file the homeserver does not know."""
    try:
        yield
    except MatrixUnknownToken as exc:
        if registration is None:
            raise
        raise ConfigError(
            f"the homeserver refuses the as_token of {SETTING}={registration.path} "
            f"(HTTP {exc.status} {exc.errcode}): list that file in homeserver.yaml's "
            "app_service_config_files and restart the homeserver, or point the setting at the "
            "file it loaded"
        ) from exc
    except MatrixForbidden as exc:
        if registration is None or "application service" not in (exc.error or "").lower():
            raise
        raise ConfigError(
            f"the homeserver refuses to let the appservice of {SETTING}={registration.path} "
            f"act as a user ({exc.error}): its copy of the registration differs from the file; "
            "restart the homeserver after editing it"
        ) from exc


def accounts_for(
    anonymous: MatrixClient, store: Store, registration: AppserviceRegistration | None
) -> Accounts:
    if registration is None:
        return Accounts(anonymous, store)
    return AppserviceAccounts(anonymous, store, registration)


class CoreLogin(NamedTuple):
    """A core account's login, password and the settings they come from."""

    login: str
    password: str
    settings: Settings


def bot_login(config: SyncConfig) -> CoreLogin:
    return CoreLogin(
        config.username, config.password, Settings("MATRIX_USERNAME", "MATRIX_PASSWORD")
    )


def admin_login(config: SyncConfig) -> CoreLogin:
    if config.admin_user == config.username:
        return bot_login(config)
    # As in the old service: without MATRIX_ADMIN_PASSWORD the bot's password is tried.
    own = config.admin_password or not config.password  # (no bot password: appservice)
    secret = "MATRIX_ADMIN_PASSWORD" if own else "MATRIX_PASSWORD"
    settings = Settings("MATRIX_ADMIN_USERNAME", secret)
    return CoreLogin(config.admin_user, config.admin_secret, settings)


async def core_client(accounts: Accounts, login: CoreLogin) -> MatrixClient:
    return await accounts.ensure_core_user(login.login, login.password, settings=login.settings)


async def agent_client_for(accounts: Accounts, store: Store, agent_id: str) -> MatrixClient:
    """The agent's own client: its stored token (or one login) with a password, the
    appservice acting as it otherwise. The agent must have been synced."""
    mapping = store.get(agent_id)
    if mapping is None or not mapping.created:
        raise SyncError(f"agent {agent_id} has no Matrix user yet: run a sync first")
    return await accounts.agent_client(mapping.matrix_user_id, mapping.matrix_password)


async def read_only_admin(
    anonymous: MatrixClient, store: Store, config: SyncConfig
) -> MatrixClient | None:
    """The admin as the appservice acts as it, for a dry run (at most one read, `whoami`);
    None when the namespace leaves the admin out."""
    assert config.appservice_registration is not None
    registration = load_registration(config.appservice_registration)
    accounts = AppserviceAccounts(anonymous, store, registration)
    with naming_the_registration(registration):
        user_id = await accounts.user_id_of(config.admin_user)
    return accounts.acting_as(user_id) if registration.controls(user_id) else None


async def read_only_user(
    anonymous: MatrixClient, store: Store, config: SyncConfig, user_id: str
) -> MatrixClient | None:
    """A user of the namespace as the appservice acts as it, for a dry run (no request)."""
    assert config.appservice_registration is not None
    registration = load_registration(config.appservice_registration)
    accounts = AppserviceAccounts(anonymous, store, registration)
    return accounts.acting_as(user_id) if registration.controls(user_id) else None
