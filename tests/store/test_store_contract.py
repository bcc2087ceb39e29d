"""One contract, every backend: the JSON files and a real PostgreSQL behave the same.

Each test opens a store, writes through the `Store` interface, closes it, and checks what a
fresh open of the same place reads back: what a sync depends on after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from app.errors import SyncLocked
from app.state import AgentMapping, JsonFileStore, SpaceConfig, Store
from app.state.postgres import PostgresStore

pytestmark = pytest.mark.anyio

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["json", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same (initially empty) place each time it is called."""
    if request.param == "json":

        async def open_json() -> Store:
            return JsonFileStore.open(tmp_path / "data", durable=False)

        return open_json
    url: str = request.getfixturevalue("postgres_url")

    async def open_postgres() -> Store:
        return await PostgresStore.open(url)

    return open_postgres


def mapping(agent_id: str, name: str = "Meridian", **extra: object) -> AgentMapping:
    return AgentMapping(
        agent_id=agent_id,
        agent_name=name,
        matrix_user_id=f"@{agent_id.replace('-', '_')}:example.org",
        matrix_password=f"pw-{agent_id}",
        created=True,
        room_id=f"!room-{agent_id}",
        room_created=True,
        invitation_status={"@admin:example.org": "joined", "@bot:example.org": "failed"},
        extra=dict(extra),
    )


async def reopened(open_store: Opener) -> Store:
    store = await open_store()
    await store.aclose()
    return store


async def test_a_new_store_is_empty(open_store: Opener) -> None:
    store = await reopened(open_store)
    assert (dict(store.mappings), dict(store.tokens)) == ({}, {})
    assert store.space == SpaceConfig()
    assert store.get("agent-1") is None and store.token("@bot:example.org") is None


async def test_mappings_come_back_whole_with_extra_fields_and_in_order(open_store: Opener) -> None:
    store = await open_store()
    saved = [
        mapping("agent-b", "Bee", custom_field_from_a_fork={"kept": [1, 2.5, None]}),
        mapping("agent-a", "Ünïcødé 🤖", history_import_pending=True),
        mapping("agent-c"),
    ]
    for one in saved:
        await store.save_mapping(one, fsync=one.agent_id == "agent-b")
    await store.compact()
    await store.aclose()

    again = await reopened(open_store)
    assert [m.to_json() for m in again.all()] == [m.to_json() for m in saved]
    assert [list(m.to_json()) for m in again.all()] == [list(m.to_json()) for m in saved]


async def test_the_last_save_of_a_mapping_wins_and_keeps_its_place(open_store: Opener) -> None:
    store = await open_store()
    await store.save_mapping(mapping("agent-1", "Old"))
    await store.save_mapping(mapping("agent-2"))
    renamed = mapping("agent-1", "New", removed_from_letta=True)
    await store.save_mapping(renamed)
    assert store.get("agent-1") == renamed  # reads see the write at once
    await store.aclose()

    again = await reopened(open_store)
    assert [m.agent_id for m in again.all()] == ["agent-1", "agent-2"]
    assert again.get("agent-1") == renamed and again.get("agent-1").removed_from_letta  # type: ignore[union-attr]


async def test_tokens_and_space_survive_a_restart(open_store: Opener) -> None:
    store = await open_store()
    await store.save_token("@bot:example.org", "syt_first", "DEV1")
    await store.save_token("@bot:example.org", "syt_second", None)
    await store.save_token("@admin:example.org", "syt_admin", "DEV2")
    space = SpaceConfig("!space", 1717171717.5, "Letta Agents", {"invited": ["@p:example.org"]})
    await store.save_space(space)
    await store.aclose()

    again = await reopened(open_store)
    assert {user: (t.access_token, t.device_id) for user, t in again.tokens.items()} == {
        "@bot:example.org": ("syt_second", None),
        "@admin:example.org": ("syt_admin", "DEV2"),
    }
    assert again.space == space


async def test_the_homeserver_view_starts_empty_and_survives_a_restart(open_store: Opener) -> None:
    store = await open_store()
    assert await store.load_view() is None
    view = {"format": 1, "next_batch": "s42", "rooms": {"!a": [["m.room.name", "", {"name": "A"}]]}}
    await store.save_view(view)
    await store.save_view({**view, "next_batch": "s43"})
    await store.aclose()

    again = await open_store()
    try:
        assert await again.load_view() == {**view, "next_batch": "s43"}
    finally:
        await again.aclose()


async def test_a_view_moves_on_without_a_rewrite_and_only_from_its_own_token(
    open_store: Opener,
) -> None:
    store = await open_store()
    view = {"format": 1, "next_batch": "s1", "rooms": {}}
    await store.save_view(view)
    await store.save_view_token("s1", "s5")
    assert await store.load_view() == {**view, "moved_on_to": "s5"}
    await store.save_view_token("s0", "s9")  # made for an older view: ignored
    assert await store.load_view() == view
    await store.save_view_token("s1", "s6")
    await store.save_view({**view, "next_batch": "s7"})  # a rewrite supersedes the position
    await store.aclose()

    again = await open_store()
    try:
        assert await again.load_view() == {**view, "next_batch": "s7"}
    finally:
        await again.aclose()


async def test_a_second_writer_is_refused_until_the_first_closes(open_store: Opener) -> None:
    first = await open_store()
    with pytest.raises(SyncLocked, match="another sync"):
        await open_store()
    await first.aclose()
    second = await open_store()
    await second.aclose()


async def test_nothing_is_pending_after_compact_and_secrets_stay_out_of_reprs(
    open_store: Opener,
) -> None:
    store = await open_store()
    await store.save_mapping(mapping("agent-1"))
    await store.save_token("@bot:example.org", "syt_secret_token", None)
    await store.compact()
    assert not store.has_pending_changes
    shown = repr(store) + repr(store.all()) + repr(list(store.tokens.values()))
    assert "syt_secret_token" not in shown and "pw-agent-1" not in shown
    assert store.location.split("=", 1)[0] in ("MATRIX_DATA_DIR", "MATRIX_STORE_URL")
    await store.aclose()
