"""Who the library acts as on the homeserver, asked of one `Identity` object.

- `protocol`: `Identity`, the questions; `CoreLogin` and `Settings`, an account's login.
- `password`: `PasswordIdentity`, password logins whose tokens are stored and re-used.
- `appservice`: `AppserviceIdentity`, the registration's `as_token` acting as its users.
- `registration`: the appservice registration file, read and written.
- `refusals`: what to tell the operator when the homeserver refuses an account.
- `naming`: an agent's localpart, user id and password.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import SyncError
from app.identity.appservice import AppserviceIdentity
from app.identity.password import PasswordIdentity
from app.identity.protocol import CoreLogin, Identity, Settings
from app.identity.registration import AppserviceRegistration, load_registration
from app.matrix import MatrixClient
from app.state import Store


def identity_for(
    anonymous: MatrixClient, store: Store, registration: AppserviceRegistration | None
) -> Identity:
    """The appservice's identity when a registration is given, password logins otherwise."""
    if registration is None:
        return PasswordIdentity(anonymous, store)
    return AppserviceIdentity(anonymous, store, registration)


def load_identity(anonymous: MatrixClient, store: Store, registration: Path | None) -> Identity:
    """`identity_for`, reading the registration file when one is named."""
    loaded = load_registration(registration) if registration is not None else None
    return identity_for(anonymous, store, loaded)


async def agent_client_for(identity: Identity, store: Store, agent_id: str) -> MatrixClient:
    """The agent's own client: its stored token (or one login) with a password, the
    appservice acting as it otherwise. The agent must have been synced."""
    mapping = store.get(agent_id)
    if mapping is None or not mapping.created:
        raise SyncError(f"agent {agent_id} has no Matrix user yet: run a sync first")
    return await identity.agent_client(mapping.matrix_user_id, mapping.matrix_password)


__all__ = [
    "AppserviceIdentity",
    "CoreLogin",
    "Identity",
    "PasswordIdentity",
    "Settings",
    "agent_client_for",
    "identity_for",
    "load_identity",
]
