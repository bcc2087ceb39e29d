"""`store import` and `store export`: move state between MATRIX_DATA_DIR and PostgreSQL.

Both merge: the source's records overwrite the target's records of the same agent (or user),
and nothing is ever deleted, so a password that exists only on one side is never lost. Both
are idempotent, and a round trip gives back the same records, extra fields included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app.errors import StateFileError
from app.state.json_store import JsonFileStore
from app.state.lock import DataDirLock
from app.state.models import AgentMapping
from app.state.postgres import PostgresStore
from app.state.store import SPACE_FILE, MappingStore


@dataclass(frozen=True)
class TransferReport:
    mappings: int  # records in the source
    changed: int  # of those, new or different in the target
    tokens: int
    space: bool  # whether a space config was copied

    def describe(self, verb: str, target: str) -> str:
        space = "and the space config " if self.space else ""
        return (
            f"{verb} {self.mappings} agent mappings ({self.changed} new or changed), "
            f"{self.tokens} access tokens {space}into {target}"
        )


def _changed(source: Mapping[str, AgentMapping], target: Mapping[str, AgentMapping]) -> int:
    return sum(
        1
        for agent_id, mapping in source.items()
        if agent_id not in target or target[agent_id].to_json() != mapping.to_json()
    )


def _read_files(data_dir: Path) -> tuple[MappingStore, bool]:
    """The files' state, and whether they hold a space config."""
    if not data_dir.is_dir():
        raise StateFileError(f"MATRIX_DATA_DIR={data_dir} does not exist: nothing to import")
    with DataDirLock(data_dir):  # a sync on these files must not change them meanwhile
        return MappingStore.read(data_dir), (data_dir / SPACE_FILE).exists()


async def import_files(data_dir: Path, url: str) -> TransferReport:
    """Copy the JSON state of `data_dir` (journal included) into the database at `url`."""
    files, has_space = _read_files(data_dir)
    target = await PostgresStore.open(url)
    try:
        changed = _changed(files.mappings, target.mappings)
        await target.save_all(files.mappings, files.tokens, files.space if has_space else None)
    finally:
        await target.aclose()
    return TransferReport(len(files.mappings), changed, len(files.tokens), has_space)


async def export_files(url: str, data_dir: Path) -> TransferReport:
    """Write the database's state into the JSON files of `data_dir` (for a bridge that
    reads them), under the directory's lock."""
    source = await PostgresStore.open(url, read_only=True)
    try:
        target = JsonFileStore.open(data_dir)
    except BaseException:
        await source.aclose()
        raise
    try:
        files = target.files
        changed = _changed(source.mappings, files.mappings)
        files.mappings.update(source.mappings)
        files.tokens.update(source.tokens)
        files.compact()
        if source.space_saved:
            files.save_space(source.space)
    finally:
        await target.aclose()
        await source.aclose()
    return TransferReport(len(source.mappings), changed, len(source.tokens), source.space_saved)
