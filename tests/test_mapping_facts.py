"""The facts the sync records about an agent are typed fields now; the files stay as they were.

Bridges and existing deployments read `agent_user_mappings.json`: a file written by the version
that kept these facts in `extra` must load into the typed fields and be written back with the
same keys and values, and one whose facts have an unexpected type must lose nothing either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import StateFileError
from app.state import AgentMapping, MappingStore
from app.state.store import MAPPINGS_FILE, TOKENS_FILE

HOLD = {
    "agent_name": "Meridian",
    "failures": 2,
    "step": "power",
    "reason": "no account may write m.room.power_levels",
    "next_try_at": 1796000000.5,
    "levels": "3f2a",
}
REFUSED = {"room_id": "!room:hs", "levels": "3f2a", "refused": {"m.room.name": ["@bot:hs"]}}

# As the last release wrote it: every fact under its key, next to a fork's own field.
TODAYS_FILE: dict[str, dict[str, Any]] = {
    "agent-1": {
        "custom_field_from_a_fork": {"kept": [1, 2.5, None]},
        "history_import_pending": True,
        "history_import_done": ["message-1", "message-2"],
        "ignored_upgrade": "!not-a-successor:hs",
        "state_refused": REFUSED,
        "held_after_failure": HOLD,
        "removed_from_letta": True,
        "agent_id": "agent-1",
        "agent_name": "Meridian",
        "matrix_user_id": "@agent_1:hs",
        "matrix_password": "pw-1",
        "created": True,
        "room_id": "!room:hs",
        "room_created": True,
        "invitation_status": {"@admin:hs": "joined"},
    },
    "agent-2": {
        # Facts of a type this version does not read: kept as they are, not read as facts.
        "history_import_pending": "yes",
        "held_after_failure": "garbage",
        "removed_from_letta": False,
        "agent_id": "agent-2",
        "agent_name": "Other",
        "matrix_user_id": "@agent_2:hs",
        "matrix_password": "pw-2",
        "created": True,
        "room_id": None,
        "room_created": False,
        "invitation_status": {},
    },
}


def test_todays_facts_load_into_typed_fields() -> None:
    mapping = AgentMapping.from_json("agent-1", TODAYS_FILE["agent-1"])
    assert mapping.history_pending is True
    assert mapping.history_done == ["message-1", "message-2"]
    assert mapping.ignored_upgrade == "!not-a-successor:hs"
    assert mapping.refused_state == REFUSED and mapping.held == HOLD
    assert mapping.removed_from_letta is True
    assert mapping.extra == {"custom_field_from_a_fork": {"kept": [1, 2.5, None]}}


def test_facts_of_another_type_are_not_read_and_not_lost() -> None:
    mapping = AgentMapping.from_json("agent-2", TODAYS_FILE["agent-2"])
    assert (mapping.history_pending, mapping.held, mapping.removed_from_letta) == (
        False,
        None,
        False,
    )
    assert mapping.to_json() == TODAYS_FILE["agent-2"]


def test_a_file_of_today_round_trips_through_the_store_unchanged(tmp_path: Path) -> None:
    (tmp_path / MAPPINGS_FILE).write_text(json.dumps(TODAYS_FILE))
    store = MappingStore.open(tmp_path)
    for mapping in store.all():
        store.save_mapping(mapping)  # written back whole, as every sync does
    store.compact()
    store.close()
    assert json.loads((tmp_path / MAPPINGS_FILE).read_text()) == TODAYS_FILE


def test_a_cleared_fact_leaves_the_file() -> None:
    mapping = AgentMapping.from_json("agent-1", TODAYS_FILE["agent-1"])
    mapping.history_pending, mapping.history_done, mapping.held = False, None, None
    mapping.mark_removed_from_letta(False)
    written = mapping.to_json()
    gone = {"history_import_pending", "history_import_done", "held_after_failure"}
    assert not gone & set(written) and "removed_from_letta" not in written
    assert written["ignored_upgrade"] == "!not-a-successor:hs"


def test_a_record_of_the_older_service_without_its_own_id_takes_the_key() -> None:
    """The older service wrote some records without `agent_id`: the file's key names them."""
    record = {"agent_name": "Old", "matrix_user_id": "@old:hs", "matrix_password": "pw"}

    mapping = AgentMapping.from_json("agent-old", record)

    assert (mapping.agent_id, mapping.created, mapping.room_id) == ("agent-old", False, None)
    assert AgentMapping.from_json("agent-key", {"agent_id": "agent-own"}).agent_id == "agent-own"


def test_an_entry_that_is_not_an_object_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / MAPPINGS_FILE).write_text(json.dumps({"agent-1": ["not", "an", "object"]}))

    with pytest.raises(StateFileError) as caught:
        MappingStore.read(tmp_path)

    assert str(caught.value).endswith(f"{MAPPINGS_FILE}: entry 'agent-1' is not an object")


def test_a_state_file_that_is_not_an_object_names_what_it_found(tmp_path: Path) -> None:
    (tmp_path / MAPPINGS_FILE).write_text("[]")

    with pytest.raises(StateFileError) as caught:
        MappingStore.read(tmp_path)

    assert str(caught.value).endswith(f"{MAPPINGS_FILE} must hold a JSON object, found list")


def test_a_stored_device_id_that_is_not_text_is_dropped_not_the_token(tmp_path: Path) -> None:
    tokens = {
        "@a:hs": {"access_token": "token-a", "device_id": 5},
        "@b:hs": {"access_token": "token-b", "device_id": "DEVB"},
    }
    (tmp_path / TOKENS_FILE).write_text(json.dumps(tokens))

    store = MappingStore.read(tmp_path)

    assert (store.token("@a:hs").access_token, store.token("@a:hs").device_id) == ("token-a", None)
    assert store.token("@b:hs").device_id == "DEVB"
