"""Pick the store a configuration names: PostgreSQL for MATRIX_STORE_URL, else the JSON files."""

from __future__ import annotations

from app.config import SyncConfig
from app.state.files import OS_FILES, FileOps
from app.state.json_store import JsonFileStore
from app.state.protocol import Store


async def open_store(
    config: SyncConfig,
    *,
    durable: bool = True,
    files: FileOps = OS_FILES,
    fence: int | None = None,
) -> Store:
    """The store for a sync, locked for this process until `aclose()`; `fence` is a
    replica's lease token (PostgreSQL only), checked on every write."""
    if config.store_url:
        from app.state.postgres import PostgresStore

        return await PostgresStore.open(config.store_url, fence=fence)
    return JsonFileStore.open(config.data_dir, durable=durable, files=files)


async def read_store(config: SyncConfig) -> Store:
    """A snapshot for display (plan, status): no lock, nothing written."""
    if config.store_url:
        return await read_store_at(config.store_url)
    return JsonFileStore.read(config.data_dir)


async def read_store_at(url: str) -> Store:
    """The database's state, read only: a database never migrated reads as empty."""
    from app.state.postgres import PostgresStore

    return await PostgresStore.open(url, read_only=True)
