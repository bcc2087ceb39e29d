"""Logged-in clients for the bot, the admin and the agents, re-using stored access tokens.

A password login creates a new device on the homeserver every time, so a token, once obtained
by registration or login, is stored and re-used; the client logs in again only when the
homeserver answers 401 M_UNKNOWN_TOKEN.
"""

from __future__ import annotations

import logging

from app.errors import ConfigError, MatrixForbidden, MatrixUserInUse
from app.matrix import Credentials, LoginResult, MatrixClient
from app.state import MappingStore
from app.sync.naming import localpart_of

log = logging.getLogger(__name__)


async def _available(client: MatrixClient, localpart: str) -> bool:
    try:
        return await client.username_available(localpart)
    except MatrixForbidden:
        return False  # registration is closed on this server: the account must exist


class Accounts:
    def __init__(self, anonymous: MatrixClient, store: MappingStore) -> None:
        self._anonymous = anonymous
        self._store = store

    async def _remember(self, result: LoginResult) -> None:
        self._store.save_token(result.user_id, result.access_token, result.device_id)

    def _client(
        self, user_id: str | None, token: str | None, login: str, password: str
    ) -> MatrixClient:
        return self._anonymous.as_user(user_id, token, Credentials(login, password), self._remember)

    def stored(self, login: str, password: str) -> MatrixClient | None:
        """A client from a stored token, without any request; None when no token is stored."""
        user_id = self._find_user_id(login)
        token = self._store.token(user_id) if user_id else None
        if token is None:
            return None
        return self._client(user_id, token.access_token, login, password)

    async def ensure_core_user(self, login: str, password: str, *, setting: str) -> MatrixClient:
        """The bot, admin or MCP account: re-used, else registered if free, else logged in."""
        client = self.stored(login, password)
        if client is not None:
            return client
        client = self._client(None, None, login, password)
        localpart = localpart_of(login)
        if await _available(client, localpart):
            log.info("registering %s", localpart)
            try:
                await client.register(localpart, password)
                return client
            except MatrixUserInUse:
                pass  # Registered by someone else in between: log in below.
        try:
            await client.login(login, password)
        except MatrixForbidden:
            raise ConfigError(
                f"cannot log in as {login!r}: the password in {setting} is wrong"
            ) from None
        return client

    async def agent_client(self, user_id: str, password: str) -> MatrixClient:
        """An agent's client; logs in (one new device) only when no token is stored."""
        client = self.stored(user_id, password)
        if client is None:
            client = self._client(user_id, None, user_id, password)
            await client.login(user_id, password)
        return client

    async def register_agent(self, localpart: str, password: str) -> tuple[MatrixClient, bool]:
        """Register the agent user; `(client, True)` if new, `(client, False)` if it existed.

        An existing user is logged in with the saved password: that is the crash-between-
        save-and-register case, where the password was stored before the account was made.
        """
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
