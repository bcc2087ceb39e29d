"""The one way a store is opened: PostgreSQL for a URL, the JSON files for a directory.

Callers pass where the state lives (`SyncConfig.store_location`: MATRIX_STORE_URL, else
MATRIX_DATA_DIR); this layer never reads the configuration itself.
"""

from __future__ import annotations

from pathlib import Path

from app.state.files import OS_FILES, FileOps
from app.state.json_store import JsonFileStore
from app.state.protocol import Store

# A postgresql:// URL, or the data directory of the JSON files.
StoreLocation = str | Path


def is_database(location: StoreLocation) -> bool:
    """A URL names a database; anything else (a directory, as a path or a string) the files."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


async def open_store(
    location: StoreLocation,
    *,
    read_only: bool = False,
    durable: bool = True,
    files: FileOps = OS_FILES,
    fence: int | None = None,
) -> Store:
    """The store at `location`. For a sync it is locked for this process until `aclose()`;
    `fence` is a replica's lease token (PostgreSQL only), checked on every write.
    `read_only`: a snapshot for display (plan, status): no lock, nothing written; a database
    never migrated reads as empty."""
    if is_database(location):
        from app.state.postgres import PostgresStore

        url = str(location)
        if read_only:
            return await PostgresStore.open(url, read_only=True)
        return await PostgresStore.open(url, fence=fence)
    if read_only:
        return JsonFileStore.read(Path(location))
    return JsonFileStore.open(Path(location), durable=durable, files=files)
