"""MappingStore: old files load with nothing lost, writes are atomic, private and journaled."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import StateFileError
from app.state import AgentMapping, MappingStore
from app.state.store import JOURNAL_FILE, MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE

OLD_MAPPINGS = {
    "agent-0d5f": {
        "agent_id": "agent-0d5f",
        "agent_name": "Meridian",
        "matrix_user_id": "@agent_0d5f:matrix.example.org",
        "matrix_password": "old-generated-password",
        "created": True,
        "room_id": "!AbCdEf:matrix.example.org",
        "room_created": True,
        "invitation_status": {
            "@admin:matrix.example.org": "joined",
            "@letta:matrix.example.org": "failed",
        },
        "custom_field_from_a_fork": {"kept": [1, 2, 3]},
    },
    "agent-minimal": {
        "agent_id": "agent-minimal",
        "agent_name": "Minimal",
        "matrix_user_id": "@agent_minimal:matrix.example.org",
        "matrix_password": "pw",
        "created": False,
    },
}
OLD_SPACE = {
    "space_id": "!space:matrix.example.org",
    "created_at": 1717171717.5,
    "name": "Letta Agents",
}


def write_old_files(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MAPPINGS_FILE).write_text(json.dumps(OLD_MAPPINGS))
    (data_dir / SPACE_FILE).write_text(json.dumps(OLD_SPACE))


def test_old_format_files_round_trip_with_nothing_lost(tmp_path: Path) -> None:
    write_old_files(tmp_path)
    store = MappingStore.open(tmp_path)

    full = store.get("agent-0d5f")
    assert full is not None and full.invitation_status["@letta:matrix.example.org"] == "failed"
    assert store.get("agent-minimal").room_id is None  # type: ignore[union-attr]
    store.compact()

    rewritten = json.loads((tmp_path / MAPPINGS_FILE).read_text())
    assert rewritten["agent-0d5f"] == OLD_MAPPINGS["agent-0d5f"]
    assert rewritten["agent-minimal"] == {
        **OLD_MAPPINGS["agent-minimal"],
        "room_id": None,
        "room_created": False,
        "invitation_status": {},
    }
    assert store.space.to_json() == OLD_SPACE
    store.save_space(store.space)
    assert json.loads((tmp_path / SPACE_FILE).read_text()) == OLD_SPACE


def test_every_change_survives_a_crash_through_the_journal(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    store.save_mapping(AgentMapping("a1", "One", "@a1:hs", "pw1"))
    store.save_token("@a1:hs", "token-1", "DEV")
    # No close(): the process "dies" here; only the journal holds the changes.
    assert (tmp_path / JOURNAL_FILE).exists()

    reopened = MappingStore.open(tmp_path)

    assert reopened.get("a1").matrix_password == "pw1"  # type: ignore[union-attr]
    assert reopened.token("@a1:hs").access_token == "token-1"  # type: ignore[union-attr]
    assert not (tmp_path / JOURNAL_FILE).exists()
    assert "a1" in json.loads((tmp_path / MAPPINGS_FILE).read_text())


def test_a_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    store.save_mapping(AgentMapping("a1", "One", "@a1:hs", "pw1"))
    with open(tmp_path / JOURNAL_FILE, "ab") as journal:
        journal.write(b'{"kind": "mapping", "agent_id": "a2", "da')

    reopened = MappingStore.open(tmp_path)

    assert set(reopened.mappings) == {"a1"}


def test_journal_is_compacted_as_it_grows(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    for n in range(600):
        store.save_mapping(AgentMapping(f"a{n}", "x", f"@a{n}:hs", "pw"))
    journal = tmp_path / JOURNAL_FILE
    lines = journal.read_bytes().count(b"\n") if journal.exists() else 0
    assert lines < 600
    assert len(json.loads((tmp_path / MAPPINGS_FILE).read_text())) >= 600 - lines


def test_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new-dir"
    store = MappingStore.open(data_dir)
    store.save_mapping(AgentMapping("a1", "One", "@a1:hs", "pw1"))
    store.save_token("@a1:hs", "token", None)
    store.save_space(store.space)
    store.close()

    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    for name in (MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE):
        assert stat.S_IMODE(os.stat(data_dir / name).st_mode) == 0o600


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / MAPPINGS_FILE).write_text("{not json")
    with pytest.raises(StateFileError, match=r"agent_user_mappings\.json"):
        MappingStore.open(tmp_path)


def test_read_only_snapshot_writes_nothing(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    store.save_mapping(AgentMapping("a1", "One", "@a1:hs", "pw1"))
    before = sorted(p.name for p in tmp_path.iterdir())

    snapshot = MappingStore.read(tmp_path)

    assert snapshot.get("a1") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_repr_hides_passwords() -> None:
    mapping = AgentMapping("a1", "One", "@a1:hs", "very-secret-pw")
    assert "very-secret-pw" not in repr(mapping)


any_text = st.text(min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(
    records=st.dictionaries(
        any_text,
        st.tuples(
            any_text, any_text, st.one_of(st.none(), any_text), st.dictionaries(any_text, any_text)
        ),
        max_size=5,
    )
)
def test_any_mapping_round_trips_through_the_files(
    tmp_path_factory: pytest.TempPathFactory, records: dict
) -> None:  # type: ignore[type-arg]
    data_dir = tmp_path_factory.mktemp("rt")
    store = MappingStore.open(data_dir)
    for agent_id, (name, password, room, extra) in records.items():
        store.save_mapping(
            AgentMapping(
                agent_id,
                name,
                f"@x:{agent_id}",
                password,
                True,
                room,
                room is not None,
                extra={f"x-{k}": v for k, v in extra.items()},
            )
        )
    store.close()

    reopened = MappingStore.open(data_dir)

    assert {a: m.to_json() for a, m in reopened.mappings.items()} == {
        a: m.to_json() for a, m in store.mappings.items()
    }
