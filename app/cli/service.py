"""The bodies of `store import|export`, of `status` on PostgreSQL, and of `run`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import anyio

from app.cli.commands import EXIT_OK, show_status
from app.config import DEFAULT_DATA_DIR, SyncConfig, check_store_url
from app.daemon.settings import ServiceSettings
from app.errors import ConfigError
from app.http.calls import Pacing
from app.http.transport import Transport
from app.state.opening import open_store
from app.state.transfer import export_files, import_files

STORE_ACTIONS = ("import", "export")


def _settings(env: Mapping[str, str] | None) -> tuple[Path, str | None]:
    source = os.environ if env is None else env
    data_dir = Path(source.get("MATRIX_DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
    url = source.get("MATRIX_STORE_URL", "").strip() or None
    if url is not None:
        check_store_url(url)
    return data_dir, url


async def run_store(action: str, env: Mapping[str, str] | None, out: TextIO) -> int:
    """`store import`: MATRIX_DATA_DIR's JSON files into MATRIX_STORE_URL; `store export`:
    back again."""
    data_dir, url = _settings(env)
    if url is None:
        raise ConfigError(
            f"store {action} needs MATRIX_STORE_URL (the postgresql:// URL of the database)"
        )
    if action == "import":
        report = await import_files(data_dir, url)
        out.write(report.describe("imported", "the database") + "\n")
    else:
        report = await export_files(url, data_dir)
        out.write(report.describe("exported", f"{data_dir.resolve()}") + "\n")
    return EXIT_OK


async def run_status(env: Mapping[str, str] | None, as_json: bool, out: TextIO) -> int:
    """`status`: the JSON files, or the database when MATRIX_STORE_URL is set."""
    data_dir, url = _settings(env)
    store = await open_store(url or data_dir, read_only=True)
    try:
        return show_status(None if url else data_dir, as_json, out, store)
    finally:
        await store.aclose()


def add_run_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="seconds between syncs (SYNC_INTERVAL)",
    )
    command.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address of the HTTP endpoints (LISTEN_ADDRESS)",
    )


def run_daemon(
    config: SyncConfig,
    args: argparse.Namespace,
    env: Mapping[str, str] | None,
    transport: Transport | None,
    pacing: Pacing | None,
) -> int:
    """`run`: the service, until SIGTERM or SIGINT (then 0)."""
    settings = ServiceSettings.from_env(env, interval=args.interval, listen=args.listen)
    if settings.backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            raise ConfigError("SYNC_BACKEND=trio needs trio installed (pip install trio)") from None
    try:
        from app.daemon.service import SyncDaemon
    except ImportError as exc:
        raise ConfigError(
            f"`run` needs the [service] extra ({exc.name} is missing): "
            "pip install 'letta-matrix-sync[service]'"
        ) from None

    async def serve() -> int:
        # Built inside the event loop: its events and cancel scope belong to that loop.
        daemon = SyncDaemon(config, settings, transport, pacing=pacing)
        return await daemon.run()

    return anyio.run(serve, backend=settings.backend)
