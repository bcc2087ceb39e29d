"""`Identity`: the one object the sync, the plan and the service ask how to act as a user.

Two classes answer it, composed rather than inherited: `PasswordIdentity` (logins, stored
tokens) and `AppserviceIdentity` (the `as_token`, which uses a `PasswordIdentity` for a core
user outside its namespace). Callers never ask which one they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from app.letta import Agent
from app.matrix import MatrixClient
from app.state import Store


class Settings(NamedTuple):
    """The configuration variables an account comes from, named when it is refused."""

    user: str
    password: str


class CoreLogin(NamedTuple):
    """A core account's login, password and the settings they come from."""

    login: str
    password: str
    settings: Settings


class Identity(Protocol):
    # This homeserver's server name, once an answer has shown it.
    server_name: str | None
    # Whether an agent user that exists already is taken over as it is (no password needed):
    # then a data directory that lost its state files is no danger to refuse.
    adopts_existing_users: bool

    def new_agent_password(self) -> str:
        """The password a new agent user gets (stored before registering); "" for none."""
        ...

    def stored(
        self, login: str, password: str, settings: Settings | None = None
    ) -> MatrixClient | None:
        """A client without any request, when one exists already; None: ask for one."""
        ...

    async def ensure_core_user(self, login: CoreLogin) -> MatrixClient:
        """The bot, admin or MCP account: re-used, registered or logged in as need be."""
        ...

    async def agent_client(self, user_id: str, password: str) -> MatrixClient:
        """An agent user's client; at most one login."""
        ...

    async def register_agent(self, user_id: str, password: str) -> tuple[MatrixClient, bool]:
        """Register the agent user; `(client, True)` if new, `(client, False)` if it existed."""
        ...

    def refuse_uncovered_agents(self, store: Store, agents: Sequence[Agent]) -> None:
        """`ConfigError` when some agent's user could never be acted as."""
        ...

    def explaining_refusals(self) -> AbstractContextManager[None]:
        """Turns the homeserver refusing this identity itself into an error naming the fix."""
        ...

    async def read_only_admin(self, login: CoreLogin) -> MatrixClient | None:
        """The admin as a dry run may act (no login, no registration); None when it cannot."""
        ...

    def read_only_agent(self, user_id: str) -> MatrixClient | None:
        """An agent user as a dry run may act (no request); None when it cannot."""
        ...
