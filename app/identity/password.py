"""Password mode: logged-in clients for the bot, the admin and the agents, re-using stored
access tokens.

A password login creates a new device on the homeserver every time, so a token, once obtained
by registration or login, is stored and re-used; the client logs in again only when the
homeserver answers 401 M_UNKNOWN_TOKEN. A refused login says why (see `app.identity.refusals`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from app.errors import (
    ApiError,
    ConfigError,
    MatrixError,
    MatrixForbidden,
    MatrixUserDeactivated,
    MatrixUserInUse,
    SyncError,
    TransportError,
)
from app.identity.naming import new_password
from app.identity.protocol import CoreLogin, Settings
from app.identity.refusals import Refusal, refusal_error, wrong_server
from app.letta import Agent
from app.matrix import Credentials, LoginResult, MatrixClient
from app.matrix.ids import localpart_of, server_name_of, user_id_from
from app.state import Store

log = logging.getLogger(__name__)


async def _available(client: MatrixClient, localpart: str) -> bool | None:
    """Whether the name is free; None when registration is closed (it cannot be made here)."""
    try:
        return await client.username_available(localpart)
    except MatrixForbidden:
        return None


class PasswordIdentity:
    """Every account logs in with its password (once: the token is stored and re-used)."""

    adopts_existing_users = False

    def __init__(self, anonymous: MatrixClient, store: Store) -> None:
        self._anonymous = anonymous
        self._store = store
        # This homeserver's server name, once one of its answers in this run has shown it.
        self.server_name: str | None = None
        # The first core account in: asks the admin API why another account is refused.
        self.inspector: MatrixClient | None = None

    def new_agent_password(self) -> str:
        """The password a new agent user gets (stored in its mapping before registering)."""
        return new_password()

    async def _remember(self, result: LoginResult) -> None:
        self.server_name = server_name_of(result.user_id) or self.server_name
        await self._store.save_token(result.user_id, result.access_token, result.device_id)

    def _client(
        self,
        user_id: str | None,
        token: str | None,
        login: str,
        password: str,
        settings: Settings | None = None,
        server_unverified: bool = False,
        registration_closed: bool = False,
    ) -> MatrixClient:
        explain = partial(
            self._explain_refusal, login, settings, server_unverified, registration_closed
        )
        credentials = Credentials(login, password)
        return self._anonymous.as_user(user_id, token, credentials, self._remember, explain)

    def stored(
        self, login: str, password: str, settings: Settings | None = None
    ) -> MatrixClient | None:
        """A client from a stored token, without any request; None when no token is stored."""
        user_id = self._find_user_id(login)
        token = self._store.token(user_id) if user_id else None
        if token is None:
            return None
        return self._client(user_id, token.access_token, login, password, settings)

    async def ensure_core_user(self, login: CoreLogin) -> MatrixClient:
        """The bot, admin or MCP account: re-used, else registered if free, else logged in."""
        client = self.stored(*login)
        if client is None:
            client = await self._first_login(*login)
        self.inspector = self.inspector or client
        return client

    async def read_only_admin(self, login: CoreLogin) -> MatrixClient | None:
        """The admin with its stored token but no credentials: it can never log in (a login
        creates a device and a token to save, both writes)."""
        stored = self.stored(login.login, login.password)
        if stored is None:
            return None
        return self._anonymous.as_user(stored.user_id, stored.access_token)

    def read_only_agent(self, user_id: str) -> MatrixClient | None:
        token = self._store.token(user_id)
        return self._anonymous.as_user(user_id, token.access_token) if token else None

    def refuse_uncovered_agents(self, store: Store, agents: Sequence[Agent]) -> None:
        """Every agent user is registered with its own password: none is out of reach."""

    @contextmanager
    def explaining_refusals(self) -> Iterator[None]:
        """A refused login explains itself (`app.identity.refusals`): nothing to add."""
        yield

    async def _first_login(self, login: str, password: str, settings: Settings) -> MatrixClient:
        verified = await self._check_server_part(login, settings.user)
        client = self._client(None, None, login, password, settings, not verified)
        localpart = localpart_of(login)
        available = await _available(client, localpart)
        if available is None:  # a refused login then says registration is closed, too
            client = self._client(None, None, login, password, settings, not verified, True)
        if available:
            log.info("registering %s", localpart)
            try:
                await client.register(localpart, password)
            except MatrixUserInUse:
                pass  # Registered by someone else in between: log in below.
            else:
                self._check_registered_as(login, client, settings.user)
                return client
        await client.login_with_credentials()
        return client

    async def _check_server_part(self, login: str, setting: str) -> bool:
        """Whether a full user id `login` is known to be on this homeserver (a bare localpart
        always is); raises `ConfigError` when it is known to be elsewhere."""
        if not login.startswith("@"):
            return True
        server_name = await self._homeserver_name()
        if server_name is None:
            return False
        if server_name_of(login).lower() != server_name.lower():
            raise wrong_server(login, setting, server_name)
        return True

    def _check_registered_as(self, login: str, client: MatrixClient, setting: str) -> None:
        registered = client.user_id or ""
        if login.startswith("@") and server_name_of(registered) != server_name_of(login):
            error = wrong_server(login, setting, server_name_of(registered))
            raise ConfigError(f"{error} (the homeserver registered {registered})")

    async def _homeserver_name(self) -> str | None:
        if self.server_name is None:
            self.server_name = await self._anonymous.published_server_name()
        if self.server_name is None and self.inspector is not None:
            self.server_name = server_name_of(await self.inspector.whoami())
        return self.server_name

    async def _explain_refusal(
        self,
        login: str,
        settings: Settings | None,
        server_unverified: bool,
        registration_closed: bool,
        error: MatrixError,
        had_token: bool,
    ) -> SyncError:
        user_id = self._full_user_id(login)
        deactivated = isinstance(error, MatrixUserDeactivated) or await self._deactivated(user_id)
        refusal = Refusal(
            user_id or login,
            error,
            had_token,
            deactivated,
            settings,
            server_unverified,
            registration_closed,
        )
        return refusal_error(refusal)

    def _full_user_id(self, login: str) -> str | None:
        if login.startswith("@"):
            return login
        inspector = self.inspector.user_id if self.inspector is not None else None
        server_name = self.server_name or server_name_of(inspector or "")
        return user_id_from(login, server_name) if server_name else None

    async def _deactivated(self, user_id: str | None) -> bool | None:
        """What the admin API says, when the first core account is a server admin."""
        inspector = self.inspector
        if inspector is None or user_id is None or user_id == inspector.user_id:
            return None
        try:
            return await inspector.account_deactivated(user_id)
        except (ApiError, TransportError):
            return None  # the question is a courtesy: never hide the refusal behind it

    async def agent_client(self, user_id: str, password: str) -> MatrixClient:
        """An agent's client; logs in (one new device) only when no token is stored."""
        client = self.stored(user_id, password)
        if client is None:
            client = self._client(user_id, None, user_id, password)
            await client.login_with_credentials()
        return client

    async def register_agent(self, user_id: str, password: str) -> tuple[MatrixClient, bool]:
        """Register the agent user; `(client, True)` if new, `(client, False)` if it existed.

        An existing user is logged in with the saved password: that is the crash-between-
        save-and-register case, where the password was stored before the account was made.
        """
        localpart = localpart_of(user_id)  # what the register and login requests name
        client = self._client(None, None, localpart, password)
        try:
            await client.register(localpart, password)
            return client, True
        except MatrixUserInUse:
            try:
                await client.login(localpart, password)
            except MatrixForbidden as exc:
                raise MatrixForbidden(
                    exc.status,
                    exc.errcode,
                    f"user {localpart} exists but the saved password is refused; was the data "
                    "directory (MATRIX_DATA_DIR) lost or changed?",
                ) from exc
            return client, False

    def _find_user_id(self, login: str) -> str | None:
        if login.startswith("@"):
            return login
        prefix = f"@{login}:"
        return next((user for user in self._store.tokens if user.startswith(prefix)), None)
