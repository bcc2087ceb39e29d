"""PostgreSQL only: schema migrations, a database newer than the code, errors that name the
setting and never the password. Against a real server (see the `postgres_server` fixture)."""

from __future__ import annotations

import psycopg
import pytest

from app.errors import StateFileError
from app.state import AgentMapping
from app.state.migrations import LATEST, SCHEMA_TABLE
from app.state.postgres import PostgresStore

pytestmark = pytest.mark.anyio


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT version FROM {SCHEMA_TABLE} ORDER BY version").fetchall()  # noqa: S608
    return [row[0] for row in rows]


async def test_migrations_run_once_at_start(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    await store.save_mapping(AgentMapping("agent-1", "A", "@a:x", "pw"))
    await store.aclose()
    store = await PostgresStore.open(postgres_url)  # a second start applies nothing again
    await store.aclose()
    assert versions(postgres_url) == list(range(1, LATEST + 1))
    assert store.get("agent-1") is not None


async def test_a_read_only_open_of_a_new_database_creates_nothing(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url, read_only=True)
    await store.aclose()
    assert store.all() == []
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'letta_matrix_sync%%'"
        ).fetchone()
    assert tables == (0,)


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_database_newer_than_the_code_is_refused(
    postgres_url: str, read_only: bool
) -> None:
    store = await PostgresStore.open(postgres_url)
    await store.aclose()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (%s)", (LATEST + 1,))  # noqa: S608

    with pytest.raises(StateFileError) as refused:
        await PostgresStore.open(postgres_url, read_only=read_only)
    message = str(refused.value)
    assert f"schema version {LATEST + 1}" in message and f"knows ({LATEST})" in message
    assert "upgrade letta-matrix-sync" in message
    assert versions(postgres_url)[-1] == LATEST + 1  # untouched


async def test_an_unreachable_database_names_the_setting_not_the_password(
    postgres_server: object,
) -> None:
    from app.testing.synapse.server import free_port

    url = f"postgresql://sync:hunter2-secret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(StateFileError) as refused:
        await PostgresStore.open(url)
    message = str(refused.value)
    assert "cannot connect to PostgreSQL (MATRIX_STORE_URL=postgresql://127.0.0.1:" in message
    assert "hunter2" not in message and "hunter2" not in repr(refused.value)
