"""What to tell the operator when the homeserver refuses an account: the cause, the setting.

Synapse answers a wrong password, a deactivated account and a user id of another server alike
(403 M_FORBIDDEN), so `PasswordIdentity` gathers what else it can learn (the admin API, the server
name) into a `Refusal`, and these pure functions turn it into the error to raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import (
    ConfigError,
    MatrixError,
    MatrixLoginRefused,
    MatrixUserDeactivated,
    SyncError,
)
from app.identity.protocol import Settings
from app.matrix.ids import localpart_of, server_name_of


@dataclass(frozen=True)
class Refusal:
    login: str
    error: MatrixError
    # The client held an access token that stopped working, so the password worked before.
    had_token: bool
    # From the admin API; None when nobody could ask.
    deactivated: bool | None
    # None for agents, whose passwords live in the state files.
    settings: Settings | None
    # The server part of `login` could not be compared with the homeserver's server name.
    server_unverified: bool = False
    # `register/available` answered 403: the account cannot be registered here.
    registration_closed: bool = False


def wrong_server(login: str, setting: str, server_name: str) -> ConfigError:
    localpart = localpart_of(login)
    return ConfigError(
        f"{setting}={login} names the server {server_name_of(login)!r}, but this homeserver is "
        f"{server_name!r}: set {setting} to @{localpart}:{server_name} or just {localpart}"
    )


def refusal_error(refusal: Refusal) -> SyncError:
    if refusal.deactivated:
        return _deactivated(refusal)
    if refusal.settings is None:
        error = refusal.error
        return MatrixLoginRefused(
            error.status, error.errcode, _agent_text(refusal), body=error.body
        )
    return ConfigError(_core_text(refusal, refusal.settings))


def _deactivated(refusal: Refusal) -> SyncError:
    deactivated = "has been deactivated on the homeserver and can never log in again"
    if refusal.settings is None:
        error = refusal.error
        message = f"the account {refusal.login} {deactivated}: this agent cannot be synced"
        return MatrixUserDeactivated(
            error.status, error.errcode, error.error, body=error.body, message=message
        )
    user, password = refusal.settings
    return ConfigError(
        f"the account {refusal.login} ({user}) {deactivated}: set {user} and {password} to an "
        "active account"
    )


def _core_text(refusal: Refusal, settings: Settings) -> str:
    login, password = refusal.login, settings.password
    if refusal.had_token:
        text = (
            f"the homeserver no longer accepts the stored access token of {login} and refuses "
            f"the password in {password}: "
        )
        if refusal.deactivated is None:
            text += f"the password was changed on the server (put the new one in {password}), "
            text += "or the account was deactivated"
        else:
            text += f"the password was changed on the server; put the new one in {password}"
    elif refusal.registration_closed and not refusal.deactivated:
        text = (
            f"cannot log in as {login!r}, and registration is closed on this homeserver, so "
            f"{settings.user} cannot be registered either: if the account does not exist, "
            "create it with the homeserver's tools (Synapse: register_new_matrix_user) or use "
            f"appservice mode (MATRIX_APPSERVICE_REGISTRATION); if it exists, the password in "
            f"{password} is wrong"
        )
    elif refusal.deactivated is None:
        text = f"cannot log in as {login!r}: the homeserver refused the password in {password} "
        text += "(a wrong password, or a deactivated account)"
    else:
        text = f"cannot log in as {login!r}: the password in {password} is wrong"
    if refusal.server_unverified:
        text += (
            f"; or {settings.user} names a server ({server_name_of(login)!r}) other than this "
            "homeserver's"
        )
    return text


def _agent_text(refusal: Refusal) -> str:
    login = refusal.login
    if refusal.had_token:
        text = f"the token of {login} expired and its saved password was refused"
    else:
        text = f"the saved password of {login} was refused"
    if refusal.deactivated is None:
        return f"{text} (changed on the server, or the account deactivated?)"
    return f"{text} (changed on the server?)"
