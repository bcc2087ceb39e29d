"""The core accounts' logins, as the configuration names them (read here, once, at the top)."""

from __future__ import annotations

from app.config import SyncConfig
from app.identity import CoreLogin, Settings


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


def mcp_login(config: SyncConfig) -> CoreLogin | None:
    if not (config.mcp_username and config.mcp_password):
        return None
    settings = Settings("MATRIX_MCP_USERNAME", "MATRIX_MCP_PASSWORD")
    return CoreLogin(config.mcp_username, config.mcp_password, settings)
