"""`store import` / `store export`: idempotent, merging, and lossless in a round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli import main
from app.state.postgres import PostgresStore
from app.state.store import JOURNAL_FILE, MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE
from app.state.transfer import TransferReport, import_files

pytestmark = pytest.mark.anyio


def record(agent_id: str, name: str, room: str | None, **extra: object) -> dict[str, object]:
    """A full record, as compaction writes it, with any extra fields first."""
    known = {"agent_id": agent_id, "agent_name": name, "matrix_user_id": f"@{agent_id}:x"}
    secret = {"matrix_password": f"pw-{agent_id}", "created": room is not None}
    where = {"room_id": room, "room_created": room is not None}
    return {**extra, **known, **secret, **where, "invitation_status": {"@admin:x": "joined"}}


MAPPINGS = {
    "agent-0d5f": record("agent-0d5f", "Meridian", "!AbCdEf", custom_field={"kept": [1, 2.5]}),
    "agent-minimal": record("agent-minimal", "Minimal ✨", None),
}
SPACE = {"invited": ["@p:x"], "space_id": "!space:x", "created_at": 1717171717.5, "name": "L"}
TOKENS = {"@letta:matrix.example.org": {"access_token": "syt_abc", "device_id": "DEV"}}
JOURNAL_RECORD = {
    "kind": "token",
    "user_id": "@admin:x",
    "access_token": "syt_j",
    "device_id": None,
}


def write_files(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    (data_dir / MAPPINGS_FILE).write_text(json.dumps(MAPPINGS))
    (data_dir / SPACE_FILE).write_text(json.dumps(SPACE))
    (data_dir / TOKENS_FILE).write_text(json.dumps(TOKENS))
    # A change only the journal holds (a sync killed before compaction) is imported too.
    (data_dir / JOURNAL_FILE).write_text(json.dumps(JOURNAL_RECORD) + "\n")


def cli(command: str, data_dir: Path, url: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"MATRIX_DATA_DIR": str(data_dir), "MATRIX_STORE_URL": url}
    code = main(["store", command], env=env, out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def files_of(data_dir: Path) -> dict[str, str]:
    names = (MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE)
    return {name: (data_dir / name).read_text() for name in names}


def test_import_then_export_gives_back_the_same_records_in_the_same_order(
    tmp_path: Path, postgres_url: str
) -> None:
    write_files(tmp_path / "old")
    assert cli("import", tmp_path / "old", postgres_url) == (
        0,
        "imported 2 agent mappings (2 new or changed), 2 access tokens and the space config "
        "into the database\n",
    )
    code, said = cli("export", tmp_path / "new", postgres_url)
    assert code == 0 and "exported 2 agent mappings (2 new or changed)" in said

    exported = {name: json.loads(text) for name, text in files_of(tmp_path / "new").items()}
    assert exported[MAPPINGS_FILE] == MAPPINGS
    assert [list(m) for m in exported[MAPPINGS_FILE].values()] == [
        list(m) for m in MAPPINGS.values()
    ]
    assert exported[SPACE_FILE] == SPACE
    assert exported[TOKENS_FILE] == {
        **TOKENS,
        "@admin:x": {"access_token": "syt_j", "device_id": None},
    }
    assert not (tmp_path / "new" / JOURNAL_FILE).exists()
    # A second export rewrites the same files: idempotent.
    before = files_of(tmp_path / "new")
    assert cli("export", tmp_path / "new", postgres_url)[1].startswith(
        "exported 2 agent mappings (0 new or changed)"
    )
    assert files_of(tmp_path / "new") == before


async def test_import_twice_changes_nothing_and_keeps_what_only_the_database_has(
    tmp_path: Path, postgres_url: str
) -> None:
    write_files(tmp_path / "old")
    await import_files(tmp_path / "old", postgres_url)
    store = await PostgresStore.open(postgres_url)
    only_in_db = store.get("agent-0d5f")
    assert only_in_db is not None
    only_in_db.agent_id = "agent-db-only"
    await store.save_mapping(only_in_db)
    await store.aclose()

    again = await import_files(tmp_path / "old", postgres_url)
    assert (again.mappings, again.changed, again.tokens) == (2, 0, 2)
    store = await PostgresStore.open(postgres_url, read_only=True)
    await store.aclose()
    assert [m.agent_id for m in store.all()] == ["agent-0d5f", "agent-minimal", "agent-db-only"]
    assert store.get("agent-0d5f").to_json() == MAPPINGS["agent-0d5f"]  # type: ignore[union-attr]


def test_store_commands_need_the_url_and_an_existing_data_dir(
    tmp_path: Path, postgres_url: str
) -> None:
    code, said = cli("import", tmp_path / "missing", postgres_url)
    assert code == 2 and "does not exist: nothing to import" in said
    out, err = io.StringIO(), io.StringIO()
    assert main(["store", "export"], env={"MATRIX_DATA_DIR": str(tmp_path)}, out=out, err=err) == 2
    assert "needs MATRIX_STORE_URL" in err.getvalue()
    code, said = cli("import", tmp_path, "mysql://db")
    assert code == 2 and "must be a postgresql:// URL" in said


def test_status_reads_the_database(tmp_path: Path, postgres_url: str) -> None:
    write_files(tmp_path / "old")
    cli("import", tmp_path / "old", postgres_url)
    out = io.StringIO()
    env = {"MATRIX_STORE_URL": postgres_url}
    assert main(["status", "--json"], env=env, out=out, err=io.StringIO()) == 0
    shown = json.loads(out.getvalue())
    assert shown["store"].startswith("MATRIX_STORE_URL=postgresql://127.0.0.1:")
    assert shown["space"] == "!space:x"
    assert [a["agent_id"] for a in shown["agents"]] == ["agent-0d5f", "agent-minimal"]


def test_the_report_mentions_the_space_config_only_when_one_was_copied() -> None:
    with_space = TransferReport(mappings=3, changed=1, tokens=2, space=True)
    without = TransferReport(mappings=3, changed=1, tokens=2, space=False)

    assert with_space.describe("imported", "the database") == (
        "imported 3 agent mappings (1 new or changed), 2 access tokens and the space config "
        "into the database"
    )
    assert without.describe("exported", "/srv/data") == (
        "exported 3 agent mappings (1 new or changed), 2 access tokens into /srv/data"
    )
