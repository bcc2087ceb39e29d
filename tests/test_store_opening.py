"""`open_store`: a database URL opens PostgreSQL; a directory, as a path or a string, the files."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from app import SyncConfig
from app.errors import StateFileError
from app.state import JsonFileStore
from app.state.opening import is_database, open_store
from app.state.postgres import schema_version

pytestmark = pytest.mark.anyio


def config(data_dir: object, store_url: str | None = None) -> SyncConfig:
    return SyncConfig(
        homeserver_url="http://localhost:8008",
        username="bot",
        password="bot-password",
        letta_url="http://localhost:8283",
        data_dir=data_dir,  # type: ignore[arg-type]  # a bridge may pass a string
        store_url=store_url,
    )


def test_a_data_dir_given_as_a_string_is_a_directory(tmp_path: Path) -> None:
    location = config(str(tmp_path)).store_location
    assert location == tmp_path and not is_database(location)


def test_a_store_url_is_a_database() -> None:
    url = "postgresql://sync@127.0.0.1:5432/sync"
    assert config("/unused", store_url=url).store_location == url and is_database(url)
    assert is_database("postgres://127.0.0.1/sync") and not is_database("/var/lib/sync")


async def test_a_directory_as_a_string_opens_the_json_files(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path))
    try:
        assert isinstance(store, JsonFileStore) and store.data_dir == tmp_path
    finally:
        await store.aclose()


async def test_a_database_opened_to_read_is_left_untouched(postgres_url: str) -> None:
    """`status` and `plan` on a database no sync has used yet: nothing is created there."""
    store = await open_store(postgres_url, read_only=True)
    try:
        assert store.all() == []
    finally:
        await store.aclose()

    with psycopg.connect(postgres_url) as conn:
        assert schema_version(conn) == 0


async def test_a_database_that_cannot_be_reached_is_named_with_the_reason() -> None:
    url = "postgresql://sync:secret-password@127.0.0.1:1/sync"  # nothing listens on port 1

    with pytest.raises(StateFileError) as caught:
        await open_store(url, read_only=True)

    message = str(caught.value)
    assert message.startswith(
        "cannot connect to PostgreSQL (MATRIX_STORE_URL=postgresql://127.0.0.1:1/sync): "
    )
    assert "secret-password" not in message
    assert len(message.partition("): ")[2]) > len("OperationalError")  # the driver's reason
