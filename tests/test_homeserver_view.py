"""The admin's view of the homeserver (`app.matrix.view`) over the fake's `/sync`: a first
read adopts the state, later reads fold in only the changes, and whatever is wrong with a
saved view or token costs a full read, never a wrong answer."""

from __future__ import annotations

import json
import stat
from typing import Any

import httpx
import pytest

from app.errors import MalformedResponse
from app.matrix import MatrixClient
from app.matrix.view import (
    FULL_READ_EVERY,
    FULL_READ_TIMEOUT_MS,
    VIEW_FORMAT,
    HomeserverView,
    read_view,
    view_filter,
)
from app.state import JsonFileStore
from app.sync.drift import WATCHED, read_homeserver
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver

pytestmark = pytest.mark.anyio

URL = "http://localhost:8008"
NOW = 1_000.0  # the injected clock of `read_view`: seconds


def admin_of(h: SyncHarness) -> tuple[MatrixClient, str]:
    hs = h.homeserver
    admin = hs.register_user("watcher", "pw")
    client = MatrixClient.connect(h.transport(), hs.base_url).as_user(admin, hs.user_token(admin))
    return client, admin


def room_with(hs: FakeHomeserver, creator: str, name: str) -> str:
    return hs.create_room(creator, {"name": name, "preset": "private_chat"})


async def sync_body(client: MatrixClient, since: str | None = None, limit: int = 50) -> Any:
    text = json.loads(view_filter(WATCHED, include_leave=True))
    text["room"]["timeline"]["limit"] = limit
    return await client.sync(json.dumps(text), since)


async def test_a_first_read_holds_only_the_watched_state_of_joined_rooms(
    sync_harness: SyncHarness,
) -> None:
    client, admin = admin_of(sync_harness)
    hs = sync_harness.homeserver
    room = room_with(hs, admin, "Watched")
    elsewhere = room_with(hs, hs.register_user("other", "pw"), "Not mine")

    view, changed = await read_view(client, None, WATCHED, URL, NOW)

    assert changed and view.joined() == {room} and elsewhere not in view.rooms
    state = view.rooms[room]
    assert state.membership(admin) == "join"
    assert state.content("m.room.name") == {"name": "Watched"}
    assert state.content("m.room.join_rules") is None  # not a watched type


async def test_a_later_read_folds_in_only_what_changed(sync_harness: SyncHarness) -> None:
    client, admin = admin_of(sync_harness)
    hs = sync_harness.homeserver
    quiet, renamed = room_with(hs, admin, "Quiet"), room_with(hs, admin, "Before")
    view, _ = await read_view(client, None, WATCHED, URL, NOW)
    hs.set_state(renamed, "m.room.name", {"name": "After"})
    hs.set_state(renamed, "m.room.topic", {"topic": "not watched"})

    body = await sync_body(client, view.next_batch)
    again, changed = await read_view(client, view, WATCHED, URL, NOW)

    assert set(body["rooms"]["join"]) == {renamed}
    assert changed and again.rooms[renamed].content("m.room.name") == {"name": "After"}
    assert again.rooms[quiet].content("m.room.name") == {"name": "Quiet"}
    _, changed_again = await read_view(client, again, WATCHED, URL, NOW)
    assert not changed_again


async def test_more_changes_than_the_timeline_holds_come_folded_into_state(
    sync_harness: SyncHarness,
) -> None:
    client, admin = admin_of(sync_harness)
    hs = sync_harness.homeserver
    room = room_with(hs, admin, "Busy")
    body = await sync_body(client)
    for n in range(5):
        hs.set_state(room, "m.room.name", {"name": f"Name {n}"})
        hs.set_state(room, "m.space.child", {"via": ["x"]}, state_key=f"!child{n}")

    delta = (await sync_body(client, body["next_batch"], limit=2))["rooms"]["join"][room]

    assert delta["timeline"]["limited"] is True and len(delta["timeline"]["events"]) == 2
    folded = {(e["type"], e["state_key"]): e["content"] for e in delta["state"]["events"]}
    assert ("m.space.child", "!child0") in folded
    view = HomeserverView.from_json(
        {
            "format": VIEW_FORMAT,
            "homeserver": URL,
            "user_id": admin,
            "next_batch": body["next_batch"],
            "rooms": {room: []},
        }
    )
    assert view is not None
    await read_view(client, view, WATCHED, URL, NOW)
    assert view.rooms[room].content("m.room.name") == {"name": "Name 4"}
    assert len(view.rooms[room].state_keys("m.space.child")) == 5


async def test_a_room_left_kicked_or_deleted_drops_out_and_a_new_one_comes_whole(
    sync_harness: SyncHarness,
) -> None:
    client, admin = admin_of(sync_harness)
    hs = sync_harness.homeserver
    owner = hs.register_user("owner", "pw")
    left, deleted = room_with(hs, admin, "Left"), room_with(hs, admin, "Deleted")
    joined_later = room_with(hs, owner, "Joined later")
    view, _ = await read_view(client, None, WATCHED, URL, NOW)
    hs.force_leave(left, admin)
    hs.delete_room(deleted)
    hs.force_join(joined_later, admin)

    view, changed = await read_view(client, view, WATCHED, URL, NOW)

    assert changed and view.joined() == {joined_later}
    assert view.rooms[joined_later].content("m.room.name") == {"name": "Joined later"}
    assert view.rooms[joined_later].membership(owner) == "join"


@pytest.mark.parametrize("token", ["s999999", "nonsense", ""])
async def test_a_token_the_homeserver_refuses_means_a_full_read(
    sync_harness: SyncHarness, token: str
) -> None:
    client, admin = admin_of(sync_harness)
    room = room_with(sync_harness.homeserver, admin, "Still here")
    stale = HomeserverView(URL, admin, token, {})

    view, changed = await read_view(client, stale, WATCHED, URL, NOW)

    assert changed and view.joined() == {room}
    assert view.next_batch not in ("", token)


@pytest.mark.parametrize(
    "saved",
    [
        {"format": 99, "homeserver": URL, "user_id": "@watcher:localhost", "rooms": {}},
        {"format": 1, "homeserver": URL},
        ["not", "a", "view"],
        None,
    ],
)
async def test_a_damaged_or_foreign_saved_view_is_read_afresh(
    sync_harness: SyncHarness, saved: Any
) -> None:
    client, admin = admin_of(sync_harness)
    room = room_with(sync_harness.homeserver, admin, "Real")
    for candidate in (HomeserverView.from_json(saved), HomeserverView("http://other", admin, "s1")):
        view, _ = await read_view(client, candidate, WATCHED, URL, NOW)
        assert view.joined() == {room}


async def test_the_view_file_is_private_and_rewritten_only_when_something_changed(
    sync_harness: SyncHarness,
) -> None:
    client, admin = admin_of(sync_harness)
    hs = sync_harness.homeserver
    room = room_with(hs, admin, "Kept")
    store = JsonFileStore.open(sync_harness.data_dir, durable=False)
    try:
        await read_homeserver(client, store, URL)
        path = sync_harness.data_dir / "matrix_sync_view.json"
        first = path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        hs.set_state(room, "m.room.topic", {"topic": "not watched"})

        await read_homeserver(client, store, URL)
        assert path.read_bytes() == first

        hs.set_state(room, "m.room.name", {"name": "Renamed"})
        view = await read_homeserver(client, store, URL)
        assert path.read_bytes() != first
        assert view.rooms[room].content("m.room.name") == {"name": "Renamed"}
        path.write_text("{ torn")
        assert (await read_homeserver(client, store, URL)).joined() == {room}
    finally:
        await store.aclose()


async def test_a_full_read_soon_after_another_is_a_fresh_answer(sync_harness: SyncHarness) -> None:
    """Synapse answers a repeated /sync from its response cache; a second full read (a lost
    view, a refused token) must not get the first one's answer."""
    client, admin = admin_of(sync_harness)
    room = room_with(sync_harness.homeserver, admin, "Before")
    await read_view(client, None, WATCHED, URL, NOW)
    sync_harness.homeserver.set_state(room, "m.room.name", {"name": "After"})

    view, _ = await read_view(client, None, WATCHED, URL, NOW)

    assert view.rooms[room].content("m.room.name") == {"name": "After"}


@pytest.mark.parametrize(("age", "kept"), [(FULL_READ_EVERY - 1, True), (FULL_READ_EVERY, False)])
async def test_a_view_a_day_old_is_read_in_full_again(
    sync_harness: SyncHarness, age: float, kept: bool
) -> None:
    """What a since-token cannot convey (a redaction, a homeserver restored from a backup)
    lasts at most a day: a saved view that old is read afresh."""
    client, admin = admin_of(sync_harness)
    room = room_with(sync_harness.homeserver, admin, "Real")
    view, _ = await read_view(client, None, WATCHED, URL, NOW)
    view.rooms["!ghost"] = view.rooms[room]  # what no since-token would ever correct

    again, _ = await read_view(client, view, WATCHED, URL, NOW + age)

    assert ("!ghost" in again.rooms) is kept and room in again.rooms


async def test_a_sync_answer_whose_rooms_are_not_an_object_is_malformed(
    sync_harness: SyncHarness,
) -> None:
    client, _ = admin_of(sync_harness)
    rooms = {"join": ["not", "an", "object"]}
    sync_harness.override("sync", httpx.Response(200, json={"next_batch": "s1", "rooms": rooms}))
    with pytest.raises(MalformedResponse) as caught:
        await read_view(client, None, WATCHED, URL, NOW)
    assert caught.value.status == 200
    assert str(caught.value).startswith("malformed response (HTTP 200): sync: a rooms section")


async def test_the_view_keeps_the_token_of_the_answer_it_read(sync_harness: SyncHarness) -> None:
    client, admin = admin_of(sync_harness)
    room_with(sync_harness.homeserver, admin, "Watched")
    view, _ = await read_view(client, None, WATCHED, URL, NOW)
    answer = await sync_body(client)
    assert view.next_batch and view.next_batch == answer["next_batch"]


async def test_reading_the_view_never_waits_for_new_events(sync_harness: SyncHarness) -> None:
    """A `/sync` with a token long-polls unless told not to: a sync must not stall on it."""
    client, admin = admin_of(sync_harness)
    room_with(sync_harness.homeserver, admin, "Watched")
    view, _ = await read_view(client, None, WATCHED, URL, NOW)
    await read_view(client, view, WATCHED, URL, NOW + 1)
    reads = [c.request for c in sync_harness.router.calls if c.request.url.path.endswith("/sync")]
    full, delta = reads
    # A full read has no token, so it is answered at once; its small timeout only keeps
    # Synapse from answering from its cache.
    assert 0 < int(full.url.params["timeout"]) <= FULL_READ_TIMEOUT_MS
    assert delta.url.params.get("timeout") == "0"
    assert delta.url.params.get("since") == view.next_batch
