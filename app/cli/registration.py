"""`letta-matrix-sync registration`: write the appservice registration for homeserver.yaml.

Needs MATRIX_USERNAME (the sender) and MATRIX_ADMIN_USERNAME, a user other than the sender;
no password and no running homeserver.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from app.config import check_admin_is_not_sender
from app.errors import ConfigError
from app.identity.registration import new_registration, render, write_private

DESCRIPTION = (
    "Write an appservice registration (YAML) for the homeserver: random as_token and "
    "hs_token, the bot (MATRIX_USERNAME) as sender, no rate limits, and an exclusive user "
    "namespace for every agent user plus the admin (MATRIX_ADMIN_USERNAME) when it is on this "
    "server. Prints it on stdout unless --output names a new file (written 0600). Then list "
    "the file in homeserver.yaml's app_service_config_files, restart the homeserver, and set "
    "MATRIX_APPSERVICE_REGISTRATION to it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server-name",
        required=True,
        help="the homeserver's server_name (the part after ':' in its user ids)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="write to this new file instead of stdout",
    )


def run_registration(
    args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    bot = (env.get("MATRIX_USERNAME") or "").strip()
    if not bot:
        raise ConfigError("MATRIX_USERNAME is required: the bot is the appservice's sender")
    admin = (env.get("MATRIX_ADMIN_USERNAME") or "").strip() or None
    check_admin_is_not_sender(admin, bot)
    server_name = str(args.server_name).strip()
    if not server_name or "/" in server_name or "@" in server_name:
        raise ConfigError(f"--server-name must be a server name like example.org: {server_name!r}")
    text = render(new_registration(server_name, bot, admin))
    output: Path | None = args.output
    if output is None:
        out.write(text)
        shown = "/path/to/the/saved/registration.yaml"
    else:
        write_private(output, text)
        shown = str(output.resolve())
    print(f"add to homeserver.yaml:\napp_service_config_files: [{shown}]", file=err)
    return 0
