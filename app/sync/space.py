"""The "Letta Agents" space: created once, re-validated, recreated when gone."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from app.errors import MatrixError, MatrixForbidden, MatrixServerError, TransportError
from app.matrix import MatrixClient
from app.matrix.view import HomeserverView
from app.state import SpaceConfig, Store
from app.sync.membership import ensure_joined

log = logging.getLogger(__name__)

SPACE_CHILD = "m.space.child"
# State event in the space itself, so a space whose id was never saved can be found again.
SPACE_TAG = "ai.letta.space"
# Extra field of the space config while a createRoom for the space is in flight.
CREATING = "creation_started_at"
# Extra field of the space config: who the space has invited, so additions get invited too.
INVITED = "invited_users"
SPACE_PARENT = "m.space.parent"
# Without the space no agent can be synced, so a failed createRoom is repeated (it is safe: see
# `_create_space`); the waits between attempts follow the client's retry policy.
SPACE_CREATE_ATTEMPTS = 5


@dataclass
class SpaceView:
    """What the space holds now, from the admin's view of the homeserver (no request)."""

    space_id: str
    created: bool
    # Found again by its tag (a lost reply, a crash, a new data directory), not made now.
    found: bool = False
    children: set[str] = field(default_factory=set)
    # The space this one replaces, whose m.space.parent events in the rooms are now stale.
    replaced: str | None = None


def space_create_options(name: str, invite: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "topic": "Rooms of the Letta agents",
        "preset": "private_chat",
        "invite": invite,
        "creation_content": {"type": "m.space"},
        "initial_state": [
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "forbidden"},
            },
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "shared"},
            },
            {"type": SPACE_TAG, "state_key": "", "content": {"name": name}},
        ],
        "power_level_content_override": {"events": {SPACE_CHILD: 50}},
    }


async def ensure_space(
    admin: MatrixClient,
    bot: MatrixClient,
    store: Store,
    homeserver: HomeserverView,
    bot_rooms: set[str],
    invitees: list[str],
    name: str,
) -> SpaceView:
    """The space, re-using the stored one while the admin is still joined to it; the bot is
    (re)joined whenever it is not in it (`bot_rooms`: the rooms it is known to be in)."""
    admin_rooms = homeserver.joined()
    stored = store.space.space_id
    if stored and (stored in admin_rooms or await _rejoin(admin, stored)):
        await _ensure_bot_in(bot, admin, stored, bot_rooms)
        await _invite_new_people(admin, store, invitees)
        await _restore_tag(admin, homeserver, stored, store.space.name or name)
        return SpaceView(stored, created=False, children=children_of(homeserver, stored))
    if stored:
        log.warning("space %s is gone or the admin left it; creating a new one", stored)
    extra = {key: value for key, value in store.space.extra.items() if key != CREATING}
    space_id, started = None, store.space.extra.get(CREATING)
    if started is not None or not stored:
        # The last run died between createRoom and saving the id, or the data directory is
        # new or was lost: a space this library made carries a tag, so find it first.
        space_id = tagged_space(homeserver)
    found = space_id is not None
    # A space found again dates from when its creation started, if this directory saw that.
    created_at = started if found and isinstance(started, (int, float)) else time.time()
    if space_id is None:
        await store.save_space(SpaceConfig(stored, None, name, {**extra, CREATING: created_at}))
        space_id = await _create_space(admin, space_create_options(name, invitees), admin_rooms)
    await store.save_space(SpaceConfig(space_id, created_at, name, {**extra, INVITED: invitees}))
    await _ensure_bot_in(bot, admin, space_id, bot_rooms)
    replaced = stored if stored != space_id else None
    children = children_of(homeserver, space_id) if found else set()
    return SpaceView(space_id, not found, found, children, replaced)


async def _restore_tag(
    admin: MatrixClient, homeserver: HomeserverView, space_id: str, name: str
) -> None:
    """The tag that finds the space again if the data directory is lost: put back when it was
    emptied or removed (the admin made the space and holds its power)."""
    room = homeserver.room(space_id)
    if room is not None and not room.content(SPACE_TAG):
        log.info("the tag of space %s was removed; restoring it", space_id)
        await admin.put_state_event(space_id, SPACE_TAG, {"name": name})


async def _invite_new_people(admin: MatrixClient, store: Store, invitees: list[str]) -> None:
    """Invite people added to the configuration since the space was made."""
    space = store.space
    invited = space.extra.get(INVITED)
    done = set(invited) if isinstance(invited, list) else set()
    missing = [person for person in invitees if person not in done]
    if not missing:
        return
    for person in missing:
        try:
            await admin.invite(space.space_id or "", person)
        except MatrixForbidden:
            pass  # already joined or invited: nothing to do
    await store.save_space(
        replace(space, extra={**space.extra, INVITED: sorted(done | set(missing))})
    )


async def _ensure_bot_in(
    bot: MatrixClient, admin: MatrixClient, space_id: str, bot_rooms: set[str]
) -> None:
    if bot.user_id == admin.user_id or space_id in bot_rooms:
        return
    if await ensure_joined(bot, admin, space_id) == "joined":
        bot_rooms.add(space_id)


async def _create_space(admin: MatrixClient, options: dict[str, Any], known: set[str]) -> str:
    """createRoom for the space, repeated after a server error or a lost reply.

    A failed attempt may still have made the space (the reply was lost, or a proxy timed out
    while the homeserver worked on): before each repeat, the rooms the admin joined since
    `known` are searched for the tag, so a repeat never makes a second space.
    """
    attempt = 1
    while True:
        try:
            return await admin.create_room(**options)
        except (MatrixServerError, TransportError) as exc:
            if attempt >= SPACE_CREATE_ATTEMPTS:
                raise
            log.warning("creating the space failed (%s); looking for it, then retrying", exc)
        await admin.pause_before_retry(attempt)
        attempt += 1
        found = await find_tagged_space(admin, set(await admin.joined_rooms()) - known)
        if found is not None:
            return found


async def find_tagged_space(admin: MatrixClient, admin_rooms: set[str]) -> str | None:
    for room_id in sorted(admin_rooms):
        try:
            if await admin.get_state_event(room_id, SPACE_TAG) is not None:
                return room_id
        except MatrixError:
            continue
    return None


async def _rejoin(admin: MatrixClient, space_id: str) -> bool:
    try:
        await admin.join(space_id)
    except MatrixError:
        return False
    return True


def children_of(homeserver: HomeserverView, space_id: str) -> set[str]:
    """The rooms the space links to; a link with no `via` is a removed one."""
    room = homeserver.room(space_id)
    if room is None:
        return set()
    return {
        key
        for key in room.state_keys(SPACE_CHILD)
        if (room.content(SPACE_CHILD, key) or {}).get("via")
    }


def tagged_space(homeserver: HomeserverView) -> str | None:
    """A space this library made, among the rooms the admin is in (found by its tag)."""
    for room_id in sorted(homeserver.joined()):
        room = homeserver.room(room_id)
        if room is not None and room.content(SPACE_TAG):
            return room_id
    return None


def child_content(server_name: str) -> dict[str, Any]:
    return {"via": [server_name], "suggested": False}


def parent_content(server_name: str) -> dict[str, Any]:
    return {"via": [server_name], "canonical": True}


async def add_child(admin: MatrixClient, view: SpaceView, room_id: str, server_name: str) -> None:
    await admin.put_state_event(view.space_id, SPACE_CHILD, child_content(server_name), room_id)
    view.children.add(room_id)


async def remove_child(admin: MatrixClient, view: SpaceView, room_id: str) -> None:
    # An m.space.child event with empty content is how a child is removed.
    await admin.put_state_event(view.space_id, SPACE_CHILD, {}, room_id)
    view.children.discard(room_id)
