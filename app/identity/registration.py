"""The appservice registration file: written by `letta-matrix-sync registration`, listed in the
homeserver's `app_service_config_files`, and read back in appservice mode
(`MATRIX_APPSERVICE_REGISTRATION`).

The file holds the two tokens that let this library act as any user of its namespace, so it is
written 0600 and the tokens never appear in reprs or messages. YAML comes from PyYAML, the
`appservice` extra: password mode never needs it.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import ConfigError

SETTING = "MATRIX_APPSERVICE_REGISTRATION"
REGISTRATION_ID = "letta-matrix-sync"
# Every localpart `app.identity.naming.agent_localpart` makes for a Letta agent id: the readable
# `agent_<uuid with underscores>` of Letta's `agent-<uuid>` ids, and the hashed form
# `<cleaned id>.<16 hex digits>` of any other id (tests/test_appservice_registration.py checks
# both against the function itself).
AGENT_LOCALPARTS = r"(agent_[a-z0-9_]*|[a-z0-9][a-z0-9_]*\.[0-9a-f]{16})"


@dataclass(frozen=True)
class UserNamespace:
    regex: str
    exclusive: bool

    def matches(self, user_id: str) -> bool:
        # As Synapse does: `re.match`, anchored at the start only.
        return re.match(self.regex, user_id) is not None


@dataclass(frozen=True)
class AppserviceRegistration:
    """What the library needs from a registration file; the tokens stay out of `repr`."""

    path: Path
    id: str
    as_token: str = field(repr=False)
    hs_token: str = field(repr=False)
    sender_localpart: str
    users: tuple[UserNamespace, ...]
    # Synapse rate-limits the appservice's users unless the file says `rate_limited: false`.
    rate_limited: bool = True

    def covers(self, user_id: str) -> bool:
        """Whether the namespace lets the appservice act as `user_id`."""
        return any(namespace.matches(user_id) for namespace in self.users)

    def controls(self, user_id: str) -> bool:
        """The sender, or a user of the namespace: the appservice can act as them."""
        localpart, _, _ = user_id.removeprefix("@").partition(":")
        return localpart == self.sender_localpart or self.covers(user_id)


def _localpart(login: str) -> str:
    return login[1:].split(":", 1)[0] if login.startswith("@") else login


def _server(login: str) -> str | None:
    return login.split(":", 1)[1] if login.startswith("@") and ":" in login else None


def new_registration(server_name: str, bot: str, admin: str | None) -> dict[str, Any]:
    """A fresh registration (new random tokens) for the bot `bot` as sender on `server_name`;
    the admin joins the namespace when it is another user of this server."""
    server = re.escape(server_name)
    bot_server = _server(bot)
    if bot_server is not None and bot_server != server_name:
        raise ConfigError(
            f"MATRIX_USERNAME={bot} is on {bot_server}, not on --server-name {server_name}: "
            "the appservice's sender must be a user of the homeserver that loads it"
        )
    users = [{"exclusive": True, "regex": f"@{AGENT_LOCALPARTS}:{server}$"}]
    if admin and _server(admin) in (None, server_name) and _localpart(admin) != _localpart(bot):
        users.append({"exclusive": True, "regex": f"@{re.escape(_localpart(admin))}:{server}$"})
    return {
        "id": REGISTRATION_ID,
        "url": None,
        "as_token": secrets.token_urlsafe(32),
        "hs_token": secrets.token_urlsafe(32),
        "sender_localpart": _localpart(bot),
        "rate_limited": False,
        "namespaces": {"users": users, "aliases": [], "rooms": []},
    }


def render(registration: dict[str, Any]) -> str:
    header = "# Appservice registration for letta-matrix-sync. Keep it secret: its tokens act\n"
    header += "# as every user of the namespace. List it in homeserver.yaml:\n"
    header += "#   app_service_config_files: [/path/to/this/file]\n"
    dumped = _yaml().safe_dump(registration, sort_keys=False, default_flow_style=False)
    return header + str(dumped)


def write_private(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner can read; an existing file is never replaced
    (its tokens are what the homeserver knows)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"--output {path} already exists: it may be the registration the homeserver "
            "has loaded; remove it first to make a new one (with new tokens)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"--output {path} cannot be written: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def load_registration(path: Path) -> AppserviceRegistration:
    """Read and check the registration named by MATRIX_APPSERVICE_REGISTRATION."""
    where = f"{SETTING}={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: no such file; write one with `letta-matrix-sync registration`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read: {_reason(exc)}") from None
    yaml = _yaml()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{where} is not valid YAML{line}") from None
    return _parse(path, data, where)


def _parse(path: Path, data: Any, where: str) -> AppserviceRegistration:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} does not hold a registration (a YAML mapping)")
    for key in ("id", "as_token", "hs_token", "sender_localpart"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{where} lacks the string field {key!r}")
    namespaces = data.get("namespaces")
    entries = namespaces.get("users") if isinstance(namespaces, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} lacks namespaces.users, the users the appservice acts as")
    return AppserviceRegistration(
        path=path,
        id=data["id"],
        as_token=data["as_token"],
        hs_token=data["hs_token"],
        sender_localpart=data["sender_localpart"],
        users=tuple(_namespace(entry, where) for entry in entries),
        rate_limited=data.get("rate_limited") is not False,
    )


def _namespace(entry: Any, where: str) -> UserNamespace:
    regex = entry.get("regex") if isinstance(entry, dict) else None
    exclusive = entry.get("exclusive") if isinstance(entry, dict) else None
    if not isinstance(regex, str) or not isinstance(exclusive, bool):
        raise ConfigError(f"{where}: each namespaces.users entry needs 'regex' and 'exclusive'")
    try:
        re.compile(regex)
    except re.error as exc:
        raise ConfigError(f"{where}: namespaces.users regex {regex!r} is invalid: {exc}") from None
    return UserNamespace(regex, exclusive)


def _reason(exc: Exception) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else "not UTF-8 text"


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            "appservice mode reads and writes YAML with PyYAML: "
            "pip install 'letta-matrix-sync[appservice]'"
        ) from None
    return yaml
