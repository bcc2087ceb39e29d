"""The bodies of `store import|export`, of `status` on PostgreSQL, and of `run`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from app.cli_commands import EXIT_OK, show_status
from app.config import DEFAULT_DATA_DIR, check_store_url
from app.errors import ConfigError
from app.state.opening import read_store_at
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
    if url is None:
        return show_status(data_dir, as_json, out)
    store = await read_store_at(url)
    try:
        return show_status(data_dir, as_json, out, store)
    finally:
        await store.aclose()
