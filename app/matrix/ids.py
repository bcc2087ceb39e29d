"""Matrix user ids: `@localpart:server_name`, taken apart and put together in one place."""

from __future__ import annotations


def localpart_of(login: str) -> str:
    """`@name:server` or `name` -> `name`."""
    if login.startswith("@"):
        return login[1:].split(":", 1)[0]
    return login


def user_id_from(login: str, server_name: str) -> str:
    """`name` -> `@name:server`; a full user id stays as it is."""
    return login if login.startswith("@") else f"@{login}:{server_name}"


def server_name_of(user_id: str) -> str:
    """The server part of a *user* id (room ids of version 12 have none; never split those)."""
    return user_id.split(":", 1)[1] if ":" in user_id else ""
