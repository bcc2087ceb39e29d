"""A whole sync with MATRIX_STORE_URL: the state lives in PostgreSQL, the data directory stays
empty, and a second sync finds everything in order from the database alone."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli import main
from app.errors import ConfigError
from app.state.postgres import PostgresStore
from app.testing.harness import SyncHarness
from app.testing.postgres import PostgresServer

from helpers import cli_env

pytestmark = pytest.mark.anyio


async def test_sync_keeps_its_state_in_postgres_and_resumes_from_it(
    sync_harness: SyncHarness, postgres_url: str, tmp_path: Path
) -> None:
    h = sync_harness
    ids = [h.letta.add_agent(f"Agent {n}") for n in range(3)]
    unused_dir = tmp_path / "no-state-here"

    first = await h.sync(store_url=postgres_url, data_dir=unused_dir)
    h.letta.rename(ids[0], "Renamed")
    logins = h.homeserver.logins
    second = await h.sync(store_url=postgres_url, data_dir=unused_dir)

    assert first.ok and sorted(first.users_created) == sorted(ids)
    assert second.ok and second.users_created == [] and second.renamed == [ids[0]]
    assert h.homeserver.logins == logins  # the tokens came back from the database
    assert not unused_dir.exists()
    store = await PostgresStore.open(postgres_url, read_only=True)
    await store.aclose()
    assert sorted(store.mappings) == sorted(ids)
    assert all(m.in_order for m in store.all())
    assert store.get(ids[0]).agent_name == "Renamed"  # type: ignore[union-attr]
    assert store.space.space_id == first.space_id
    room = store.get(ids[1]).room_id  # type: ignore[union-attr]
    assert h.homeserver.state(first.space_id or "", "m.space.child", room or "") is not None


async def test_an_empty_database_on_an_existing_deployment_stops_naming_the_store_url(
    sync_harness: SyncHarness, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    h = sync_harness
    h.letta.add_agent("Deployed")
    assert (await h.sync(store_url=postgres_server.new_database())).ok
    rooms = set(h.homeserver.room_ids())

    with pytest.raises(ConfigError) as stopped:
        await h.sync(store_url=postgres_server.new_database(), data_dir=tmp_path / "unused")

    message = str(stopped.value)
    assert message.startswith("MATRIX_STORE_URL=") and "Point MATRIX_STORE_URL" in message
    assert "MATRIX_DATA_DIR" not in message and set(h.homeserver.room_ids()) == rooms


@pytest.mark.parametrize("command", [["sync"], ["plan"], ["sync", "--json"], ["plan", "--json"]])
def test_sync_and_plan_on_postgres_name_the_database_not_a_data_directory(
    postgres_url: str, tmp_path: Path, command: list[str]
) -> None:
    h = SyncHarness(tmp_path / "unused")
    h.letta.add_agent("Stored")
    out, err = io.StringIO(), io.StringIO()
    env = cli_env(h, MATRIX_STORE_URL=postgres_url)

    code = main(command, env=env, transport=h.transport(), out=out, err=err)

    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "matrix_data" not in text and str(h.data_dir) not in text
    if "--json" in command:
        data = json.loads(text)
        assert data["data_dir"] is None and data["store"].startswith("postgresql://")
    else:
        assert "store: MATRIX_STORE_URL=postgresql://" in text
