"""SyncConfig.from_env with plain dicts: names in errors, defaults, secrets out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import SyncConfig
from app.errors import ConfigError

BASE = {
    "MATRIX_HOMESERVER_URL": "http://localhost:8008",
    "MATRIX_USERNAME": "letta-bot",
    "MATRIX_PASSWORD": "bot-password-123",
    "LETTA_API_URL": "http://localhost:8283",
}


def env(**overrides: str) -> dict[str, str]:
    return {**BASE, **overrides}


@pytest.mark.parametrize("name", sorted(BASE))
@pytest.mark.parametrize("value", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_required_variable_missing_is_named(name: str, value: str | None) -> None:
    settings = env()
    if value is None:
        del settings[name]
    else:
        settings[name] = value
    with pytest.raises(ConfigError, match=name):
        SyncConfig.from_env(settings)


def test_defaults() -> None:
    config = SyncConfig.from_env(env())
    assert config.homeserver_url == "http://localhost:8008"
    assert config.letta_url == "http://localhost:8283"
    assert (config.username, config.password) == ("letta-bot", "bot-password-123")
    assert config.letta_token is None
    assert config.data_dir == Path("./matrix_data")
    assert config.log_level == "INFO"
    assert config.invite_users == ()
    assert (config.mcp_username, config.mcp_password) == (None, None)
    assert config.history_import_limit == 15
    assert config.room_name_template == "{name}"
    assert config.space_name == "Letta Agents"
    assert config.sync_concurrency == 8


def test_all_settings_read() -> None:
    config = SyncConfig.from_env(
        env(
            MATRIX_ADMIN_USERNAME="admin",
            MATRIX_ADMIN_PASSWORD="admin-pw",
            LETTA_TOKEN="letta-tok",
            MATRIX_DATA_DIR="/var/lib/sync",
            LOG_LEVEL="debug",
            MATRIX_MCP_USERNAME="mcp",
            MATRIX_MCP_PASSWORD="mcp-pw",
            HISTORY_IMPORT_LIMIT=" 0 ",
            ROOM_NAME_TEMPLATE="{name} ({agent_id})",
            LETTA_SPACE_NAME="My Agents",
            SYNC_CONCURRENCY="3",
        )
    )
    assert (config.admin_user, config.admin_secret) == ("admin", "admin-pw")
    assert config.letta_token == "letta-tok"
    assert config.data_dir == Path("/var/lib/sync")
    assert config.log_level == "DEBUG"
    assert (config.mcp_username, config.mcp_password) == ("mcp", "mcp-pw")
    assert config.history_import_limit == 0
    assert config.room_name_template == "{name} ({agent_id})"
    assert config.space_name == "My Agents"
    assert config.sync_concurrency == 3


def test_admin_defaults_to_the_bot() -> None:
    config = SyncConfig.from_env(env())
    assert (config.admin_user, config.admin_secret) == ("letta-bot", "bot-password-123")


def test_admin_same_as_bot_needs_no_second_password() -> None:
    config = SyncConfig.from_env(env(MATRIX_ADMIN_USERNAME="letta-bot"))
    assert (config.admin_user, config.admin_secret) == ("letta-bot", "bot-password-123")


def test_other_admin_without_password_falls_back_to_the_bots_like_the_old_service() -> None:
    config = SyncConfig.from_env(env(MATRIX_ADMIN_USERNAME="admin"))
    assert config.admin_user == "admin"
    assert config.admin_secret == config.password


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        SyncConfig.from_env({"MATRIX_USERNAME": "bot", "MATRIX_PASSWORD": ""})
    message = str(caught.value)
    assert "MATRIX_HOMESERVER_URL" in message and "LETTA_API_URL" in message
    assert "MATRIX_PASSWORD" in message and "MATRIX_USERNAME" not in message


@pytest.mark.parametrize(("name", "value"), [("LOG_LEVEL", "LOUD"), ("HTTP_TIMEOUT", "-1")])
def test_bad_log_level_and_timeout_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        SyncConfig.from_env(env(**{name: value}))


@pytest.mark.parametrize("present", ["MATRIX_MCP_USERNAME", "MATRIX_MCP_PASSWORD"])
def test_mcp_credentials_must_come_together(present: str) -> None:
    with pytest.raises(ConfigError, match="MATRIX_MCP_USERNAME"):
        SyncConfig.from_env(env(**{present: "x"}))


def test_invite_users_parsed() -> None:
    config = SyncConfig.from_env(
        env(MATRIX_INVITE_USERS=" @alice:localhost, ,@bob:example.org:8448,")
    )
    assert config.invite_users == ("@alice:localhost", "@bob:example.org:8448")


@pytest.mark.parametrize("bad", ["alice", "@alice", "alice:localhost", "#room:localhost"])
def test_invite_users_rejects_non_mxid(bad: str) -> None:
    with pytest.raises(ConfigError, match="MATRIX_INVITE_USERS") as caught:
        SyncConfig.from_env(env(MATRIX_INVITE_USERS=f"@ok:localhost,{bad}"))
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize("name", ["MATRIX_HOMESERVER_URL", "LETTA_API_URL"])
@pytest.mark.parametrize("url", ["localhost:8008", "ftp://localhost", "http://", "//localhost"])
def test_url_without_http_scheme_is_rejected(name: str, url: str) -> None:
    with pytest.raises(ConfigError, match=name):
        SyncConfig.from_env(env(**{name: url}))


def test_https_url_accepted() -> None:
    config = SyncConfig.from_env(env(MATRIX_HOMESERVER_URL="https://localhost:8448"))
    assert config.homeserver_url == "https://localhost:8448"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HISTORY_IMPORT_LIMIT", "ten"),
        ("HISTORY_IMPORT_LIMIT", "1.5"),
        ("HISTORY_IMPORT_LIMIT", "-1"),
        ("SYNC_CONCURRENCY", "many"),
        ("SYNC_CONCURRENCY", "0"),
    ],
)
def test_bad_integer_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        SyncConfig.from_env(env(**{name: value}))


@pytest.mark.parametrize(
    "template",
    [
        "{nme}",
        "{0}",
        "{}",
        "{name",
        "name}",
        "{name:d}",
        pytest.param(
            "{name.nope}",
        ),
        pytest.param(
            "{name[x]}",
        ),
    ],
)
def test_bad_room_name_template(template: str) -> None:
    with pytest.raises(ConfigError, match="ROOM_NAME_TEMPLATE"):
        SyncConfig.from_env(env(ROOM_NAME_TEMPLATE=template))


def test_repr_hides_passwords_and_tokens() -> None:
    secrets = {
        "MATRIX_PASSWORD": "secret-bot-pw",
        "MATRIX_ADMIN_PASSWORD": "secret-admin-pw",
        "MATRIX_MCP_PASSWORD": "secret-mcp-pw",
        "LETTA_TOKEN": "secret-letta-token",
    }
    config = SyncConfig.from_env(
        env(MATRIX_ADMIN_USERNAME="admin", MATRIX_MCP_USERNAME="mcp", **secrets)
    )
    text = repr(config)
    assert "letta-bot" in text and "http://localhost:8008" in text
    for secret in secrets.values():
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:secret@localhost:8008/x?access_token=t", "http://localhost:8008/x"),
        ("localhost:8283", "localhost:8283"),
        ("https://localhost", "https://localhost"),
        ("https://localhost/path#token=a#b", "https://localhost/path"),
        ("postgresql://sync:pw@db:5432/sync?sslmode=require", "postgresql://db:5432/sync"),
    ],
)
def test_redact_url_drops_credentials_and_query(url: str, shown: str) -> None:
    from app.http.paths import redact_url

    assert redact_url(url) == shown


def test_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        SyncConfig.from_env(env(MATRIX_HOMESERVER_URL="http://bob:hunter2@localhost:8008"))
    assert "hunter2" not in str(caught.value) and "MATRIX_HOMESERVER_URL" in str(caught.value)


def test_retry_budget_defaults_to_30_seconds_and_is_read() -> None:
    assert SyncConfig.from_env(env()).retry_budget == 30.0
    assert SyncConfig.from_env(env(RETRY_BUDGET=" 90 ")).retry_budget == 90.0
    assert SyncConfig.from_env(env(RETRY_BUDGET="0")).retry_budget == 0.0
    assert SyncConfig.from_env(env(RETRY_BUDGET="2.5")).retry_budget == 2.5


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_bad_retry_budget_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match="RETRY_BUDGET"):
        SyncConfig.from_env(env(RETRY_BUDGET=value))


def test_a_negative_failed_retry_max_names_the_setting() -> None:
    with pytest.raises(
        ConfigError, match="FAILED_RETRY_MAX must be a number of seconds, 0 or more"
    ):
        SyncConfig.from_env(env(FAILED_RETRY_MAX="-5"))
