"""What the homeserver says about the deployment's rooms, and how it differs from what it
should be: the facts `sync` repairs and `plan` shows, read in one `/sync` request.

Only the admin's view is read: the admin is in the space and in every agent room, and the
state of those rooms names everyone else (the agent, the bot, people invited or not).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.errors import LeaseLost, StateFileError
from app.matrix import MatrixClient
from app.matrix.view import CREATE, MEMBER, HomeserverView, RoomState, read_view
from app.state import Store
from app.sync.power import POWER_LEVELS
from app.sync.rooms import AGENT_TAG
from app.sync.space import SPACE_CHILD, SPACE_PARENT, SPACE_TAG

log = logging.getLogger(__name__)

ROOM_NAME = "m.room.name"
TOMBSTONE = "m.room.tombstone"
WATCHED = (
    MEMBER,
    ROOM_NAME,
    TOMBSTONE,
    SPACE_CHILD,
    SPACE_PARENT,
    AGENT_TAG,
    SPACE_TAG,
    POWER_LEVELS,
    CREATE,
)


async def read_homeserver(
    admin: MatrixClient,
    store: Store,
    homeserver_url: str,
    *,
    save: bool = True,
    now: Callable[[], float] = time.time,
) -> HomeserverView:
    """The admin's view now: only the changes since the saved view are read."""
    saved = HomeserverView.from_json(await store.load_view())
    token_before = saved.next_batch if saved is not None else None
    view, changed = await read_view(admin, saved, WATCHED, homeserver_url, now())
    if save:
        try:
            await _save(store, view, changed, token_before)
        except LeaseLost:
            raise  # another replica leads now: this one must stop, not carry on
        except StateFileError as exc:
            # Only a cache: the next sync reads from the older token, and gets the same facts.
            log.warning("the homeserver view was not saved: %s", exc)
    return view


async def _save(store: Store, view: HomeserverView, changed: bool, before: str | None) -> None:
    """The whole view when it changed, else only its new token: Synapse answers a repeated
    /sync (same token) from a cache for two minutes, so the token must move on even when the
    answer held nothing (a change made meanwhile would otherwise go unseen that long)."""
    if changed:
        await store.save_view(view.to_json())
        view.saved_at = view.next_batch
    elif view.saved_at is not None and view.next_batch != before:
        await store.save_view_token(view.saved_at, view.next_batch)


def replacement_of(room: RoomState) -> str | None:
    """The room that replaced this one when it was upgraded, if it was."""
    target = (room.content(TOMBSTONE) or {}).get("replacement_room")
    return target if isinstance(target, str) and target else None


def room_name(room: RoomState) -> str | None:
    name = (room.content(ROOM_NAME) or {}).get("name")
    return name if isinstance(name, str) else None


def has_parent(room: RoomState, space_id: str) -> bool:
    return bool((room.content(SPACE_PARENT, space_id) or {}).get("via"))


@dataclass(frozen=True)
class RoomDrift:
    """How an agent room differs from what the sync keeps it at (empty: nothing to do)."""

    upgraded_to: str | None = None
    agent_out: str | None = None  # the agent's membership when it is not "join"
    members_out: tuple[str, ...] = ()
    renamed: bool = False
    parent_missing: bool = False
    untagged: bool = False

    def describe(self) -> str:
        parts = []
        if self.upgraded_to:
            parts.append(f"room upgraded to {self.upgraded_to}")
        if self.agent_out:
            parts.append(f"agent user not in the room ({self.agent_out})")
        parts += [f"{user} not in the room" for user in self.members_out]
        if self.renamed:
            parts.append("room renamed by hand")
        if self.parent_missing:
            parts.append("space link in the room removed")
        if self.untagged:
            parts.append("the room's agent tag removed")
        return "; ".join(parts)


def room_drift(
    room: RoomState,
    agent_user: str,
    members: list[str],
    expected_name: str,
    space_id: str | None,
    agent_id: str = "",
) -> RoomDrift:
    agent = room.membership(agent_user)
    return RoomDrift(
        untagged=bool(agent_id) and room.content(AGENT_TAG) != {"agent_id": agent_id},
        upgraded_to=replacement_of(room),
        agent_out=None if agent == "join" else (agent or "never joined"),
        members_out=tuple(user for user in members if room.membership(user) != "join"),
        renamed=room_name(room) != expected_name,
        parent_missing=space_id is not None and not has_parent(room, space_id),
    )
