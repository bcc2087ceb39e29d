"""Typed configuration, read from the environment; nothing about a deployment is hard-coded."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.errors import ConfigError
from app.http.paths import redact_url

DEFAULT_DATA_DIR = "./matrix_data"
DEFAULT_ROOM_NAME_TEMPLATE = "{name}"
DEFAULT_SPACE_NAME = "Letta Agents"


@dataclass(frozen=True)
class SyncConfig:
    """Everything a sync needs. Secrets are kept out of `repr`."""

    homeserver_url: str
    username: str
    password: str = field(repr=False)
    letta_url: str
    admin_username: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    letta_token: str | None = field(default=None, repr=False)
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    log_level: str = "INFO"
    invite_users: tuple[str, ...] = ()
    mcp_username: str | None = None
    mcp_password: str | None = field(default=None, repr=False)
    history_import_limit: int = 15
    room_name_template: str = DEFAULT_ROOM_NAME_TEMPLATE
    space_name: str = DEFAULT_SPACE_NAME
    sync_concurrency: int = 8
    # Lean agents a page: 500 measured fastest on 0.16.8 (benchmarks/letta_tier.py).
    letta_page_size: int = 500
    http_timeout: float = 30.0
    retry_budget: float = 30.0
    # Longest wait before an agent that failed for a cause retrying cannot fix is tried again.
    failed_retry_max: float = 3600.0
    # `sync --retry-failed`: try such agents now, whatever their wait.
    retry_failed: bool = False
    # Appservice mode: the registration file (MATRIX_APPSERVICE_REGISTRATION); None: passwords.
    appservice_registration: Path | None = None
    # MATRIX_STORE_URL: a postgresql:// URL puts the state in PostgreSQL instead of data_dir.
    store_url: str | None = field(default=None, repr=False)

    @property
    def store_location(self) -> str | Path:
        """Where the state lives, for `app.state.opening.open_store`."""
        return self.store_url or Path(self.data_dir)

    def __post_init__(self) -> None:
        if not self.password and self.appservice_registration is None:
            raise ConfigError(
                "MATRIX_PASSWORD is required unless MATRIX_APPSERVICE_REGISTRATION names an "
                "appservice registration"
            )
        _check_url("MATRIX_HOMESERVER_URL", self.homeserver_url)
        _check_url("LETTA_API_URL", self.letta_url)
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
        if self.http_timeout <= 0:
            raise ConfigError("HTTP_TIMEOUT must be a positive number of seconds")
        if not 0 <= self.retry_budget < float("inf"):
            raise ConfigError("RETRY_BUDGET must be a number of seconds, 0 or more")
        if not 0 <= self.failed_retry_max < float("inf"):
            raise ConfigError("FAILED_RETRY_MAX must be a number of seconds, 0 or more")
        if bool(self.mcp_username) != bool(self.mcp_password):
            raise ConfigError("MATRIX_MCP_USERNAME and MATRIX_MCP_PASSWORD must be set together")
        if self.history_import_limit < 0:
            raise ConfigError("HISTORY_IMPORT_LIMIT must be 0 or more")
        if self.sync_concurrency < 1:
            raise ConfigError("SYNC_CONCURRENCY must be 1 or more")
        _check_template(self.room_name_template)
        if self.store_url is not None:
            check_store_url(self.store_url)
        if self.appservice_registration is not None:
            check_admin_is_not_sender(self.admin_username, self.username)

    @property
    def admin_user(self) -> str:
        return self.admin_username or self.username

    @property
    def admin_secret(self) -> str:
        # As in the old service: without MATRIX_ADMIN_PASSWORD the bot's password is tried.
        return self.admin_password or self.password

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SyncConfig:
        """Read the settings from `env` (default `os.environ`); see README for the names."""
        source = os.environ if env is None else env
        get = _Reader(source)
        registration = get.optional("MATRIX_APPSERVICE_REGISTRATION")
        required = _REQUIRED if registration is None else _REQUIRED_WITH_APPSERVICE
        missing = [name for name in required if get.optional(name) is None]
        if missing:
            raise ConfigError(f"required but not set (or empty): {', '.join(missing)}")
        return cls(
            homeserver_url=get.required("MATRIX_HOMESERVER_URL"),
            username=get.required("MATRIX_USERNAME"),
            password=get.optional("MATRIX_PASSWORD") or "",
            letta_url=get.required("LETTA_API_URL"),
            admin_username=get.optional("MATRIX_ADMIN_USERNAME"),
            admin_password=get.optional("MATRIX_ADMIN_PASSWORD"),
            letta_token=get.optional("LETTA_TOKEN"),
            data_dir=Path(get.optional("MATRIX_DATA_DIR") or DEFAULT_DATA_DIR),
            log_level=(get.optional("LOG_LEVEL") or "INFO").upper(),
            invite_users=get.user_list("MATRIX_INVITE_USERS"),
            mcp_username=get.optional("MATRIX_MCP_USERNAME"),
            mcp_password=get.optional("MATRIX_MCP_PASSWORD"),
            history_import_limit=get.integer("HISTORY_IMPORT_LIMIT", 15),
            room_name_template=get.optional("ROOM_NAME_TEMPLATE") or DEFAULT_ROOM_NAME_TEMPLATE,
            space_name=get.optional("LETTA_SPACE_NAME") or DEFAULT_SPACE_NAME,
            sync_concurrency=get.integer("SYNC_CONCURRENCY", 8),
            http_timeout=get.number("HTTP_TIMEOUT", 30.0),
            retry_budget=get.number("RETRY_BUDGET", 30.0),
            failed_retry_max=get.number("FAILED_RETRY_MAX", 3600.0),
            appservice_registration=Path(registration) if registration else None,
            store_url=get.optional("MATRIX_STORE_URL"),
        )

    @classmethod
    def from_legacy(cls, legacy: object, env: Mapping[str, str] | None = None) -> SyncConfig:
        """Adapt the old bridge's config object (`homeserver_url`, `username`, `password`,
        `letta_api_url`, `letta_token`, `log_level` attributes); the rest comes from `env`."""
        source = dict(os.environ if env is None else env)
        for attribute, variable in _LEGACY_ATTRIBUTES.items():
            value = getattr(legacy, attribute, None)
            if isinstance(value, str) and value:
                source[variable] = value
        return cls.from_env(source)


def check_admin_is_not_sender(admin: str | None, sender: str) -> None:
    """Synapse cannot serve `/sync` for an appservice's sender (it answers HTTP 500), and the
    admin's `/sync` is how the library sees the homeserver: the admin is another user."""
    if admin and _localpart(admin) != _localpart(sender):
        return
    raise ConfigError(
        "appservice mode needs MATRIX_ADMIN_USERNAME, a user other than the appservice's "
        f"sender (MATRIX_USERNAME={sender}): the homeserver cannot serve the sender's /sync. "
        "Set it (admin, say), and list it in the registration's namespace (`letta-matrix-sync "
        "registration` does so)"
    )


def _localpart(login: str) -> str:
    return login.strip().removeprefix("@").split(":", 1)[0]


_REQUIRED = ("MATRIX_HOMESERVER_URL", "MATRIX_USERNAME", "MATRIX_PASSWORD", "LETTA_API_URL")
# In appservice mode the bot is the registration's sender: no password.
_REQUIRED_WITH_APPSERVICE = ("MATRIX_HOMESERVER_URL", "MATRIX_USERNAME", "LETTA_API_URL")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_LEGACY_ATTRIBUTES = {
    "homeserver_url": "MATRIX_HOMESERVER_URL",
    "username": "MATRIX_USERNAME",
    "password": "MATRIX_PASSWORD",
    "letta_api_url": "LETTA_API_URL",
    "letta_token": "LETTA_TOKEN",
    "log_level": "LOG_LEVEL",
}


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(f"{name} is required but not set")
        return value

    def number(self, name: str, default: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None

    def integer(self, name: str, default: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None

    def user_list(self, name: str) -> tuple[str, ...]:
        users = tuple(
            part.strip() for part in (self.optional(name) or "").split(",") if part.strip()
        )
        for user in users:
            if not user.startswith("@") or ":" not in user:
                raise ConfigError(f"{name}: {user!r} is not a Matrix user id like @name:server")
        return users


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = redact_url(url)
        raise ConfigError(
            f"{name} must be an http(s) URL such as http://localhost:8008, got {shown!r}"
        )
    if parts.query or parts.username or parts.password:
        raise ConfigError(f"{name} must not carry credentials or a query: {redact_url(url)!r}")


def check_store_url(url: str) -> None:
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "MATRIX_STORE_URL must be a postgresql:// URL such as "
            f"postgresql://sync@db.example/letta_matrix, got {redact_url(url)!r} "
            "(leave it unset to keep the state in MATRIX_DATA_DIR)"
        )


def _check_template(template: str) -> None:
    try:
        template.format(name="agent", agent_id="agent-id")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"ROOM_NAME_TEMPLATE may use only {{name}} and {{agent_id}}: {template!r} ({exc})"
        ) from None
