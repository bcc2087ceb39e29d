"""A dry run: what the next sync would do, with no write to Matrix or to the state files.

Only stored access tokens are used (a login would create a device, which is a write); when
the admin has none, the admin's view of Matrix is not consulted and the plan says so. Even
then the homeserver is asked what needs no token: that it is one (`/versions`), and whether
the names of the bot and of agents to create are taken (`register/available`), so a wrong URL
or an existing deployment is never planned as "create everything".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.config import SyncConfig
from app.errors import (
    MatrixForbidden,
    MatrixUnknownToken,
    SyncError,
)
from app.http.paths import redact_url
from app.http.retry import RetryPolicy
from app.http.transport import Transport
from app.identity import load_identity
from app.letta import Agent, LettaClient
from app.matrix import MatrixClient
from app.matrix.ids import server_name_of, user_id_from
from app.matrix.view import HomeserverView, RoomState
from app.state import AgentMapping, Store
from app.state.opening import open_store
from app.sync.backoff import held, levels_now
from app.sync.decide import (
    Action,
    RoomFacts,
    blocked,
    members_back,
    rejoined,
    room_actions,
    room_fate,
)
from app.sync.drift import ROOM_NAME, read_homeserver, room_drift
from app.sync.logins import admin_login
from app.sync.plan_reads import (
    ADMIN_OUT,
    AgentReaders,
    check_is_homeserver,
    check_names,
    room_alive,
)
from app.sync.plan_types import PlannedAction, SyncPlan
from app.sync.report import describe
from app.sync.rooms import AGENT_TAG, clip, room_name
from app.sync.space import SPACE_CHILD, children_of, tagged_space


async def make_plan(
    config: SyncConfig, transport: Transport, now: Callable[[], float] = time.time
) -> SyncPlan:
    """`now`: the wall clock the sync's hold on failed agents is measured by."""
    store = await open_store(config.store_location, read_only=True)
    try:
        return await _make_plan(config, transport, store, now())
    finally:
        await store.aclose()


async def _make_plan(
    config: SyncConfig, transport: Transport, store: Store, now: float
) -> SyncPlan:
    policy = RetryPolicy(budget=config.retry_budget)
    matrix = MatrixClient.connect(transport, config.homeserver_url, policy=policy)
    await check_is_homeserver(matrix, config.homeserver_url)
    identity = load_identity(matrix, store, config.appservice_registration)
    admin = await identity.read_only_admin(admin_login(config))
    try:
        homeserver = await _homeserver(admin, store, config.homeserver_url)
    except (MatrixUnknownToken, MatrixForbidden):
        # An expired token, or an appservice admin not registered yet: say "not checked".
        admin, homeserver = None, None
    space_id = store.space.space_id
    if homeserver is not None and not space_id:
        space_id = tagged_space(homeserver)  # a new data directory: the sync finds it so
    keep = homeserver is not None and space_id in homeserver.joined()
    space = "unknown" if homeserver is None else ("keep" if keep else "create")
    plan = SyncPlan(space=space, matrix_checked=admin is not None)
    letta = LettaClient.connect(transport, config.letta_url, config.letta_token, policy=policy)
    try:
        listing = await letta.list_agents(config.letta_page_size)
    except SyncError as exc:
        plan.letta_error = f"LETTA_API_URL={redact_url(config.letta_url)}: {describe(exc)}"
        return plan
    agents = listing.agents
    plan.removed_from_letta = listing.missing(store.mappings) if agents else []
    if listing.incomplete is not None:
        plan.notes.append(f"Letta listing incomplete ({listing.incomplete}): none counted removed")
    adopting = homeserver is not None and identity.adopts_existing_users
    seen = _Seen(
        homeserver,
        space_id,
        _core_users(admin, config),
        _tagged(homeserver, adopting),
        space_kept=keep,
        space_is_new=not keep or not store.space.space_id,
    )
    readers = AgentReaders(identity)
    for agent in agents:
        mapping = store.get(agent.id)
        # Held back: the sync will not try it. A hold that is over is tried like any agent.
        hold = held(mapping, agent.name, now, levels_now(homeserver, mapping))
        if hold is not None:
            detail = f"{hold.reason}; next try after {hold.next_try}"
            plan.actions.append(PlannedAction(agent.id, agent.name, "blocked", detail))
            continue
        planned = _plan_agent(agent, mapping, seen, config)
        if planned.action in ("repair", "create_room") and admin is not None:
            planned = await _blocked_if_deactivated(admin, mapping, planned, _fate(mapping, seen))
        if planned.detail == ADMIN_OUT and mapping is not None:
            planned = await room_alive(await readers.agent(mapping), mapping, planned)
        plan.actions.append(planned)
    if identity.adopts_existing_users:
        plan.notes.append("appservice mode: agent users that exist already are adopted")
    else:
        unmapped = {agent.id for agent in agents if store.get(agent.id) is None}
        await check_names(matrix, config.username, plan, unmapped)
    return plan


async def _homeserver(
    admin: MatrixClient | None, store: Store, homeserver_url: str
) -> HomeserverView | None:
    if admin is None:
        return None
    return await read_homeserver(admin, store, homeserver_url, save=False)


def _core_users(admin: MatrixClient | None, config: SyncConfig) -> list[str]:
    if admin is None or admin.user_id is None:
        return []
    bot = user_id_from(config.username, server_name_of(admin.user_id))
    return list(dict.fromkeys([admin.user_id, bot]))


@dataclass(frozen=True)
class _Seen:
    """What the admin's view shows, when it could be read."""

    homeserver: HomeserverView | None
    space_id: str | None
    core_users: list[str]
    # Agent id -> its room, found by the room's tag (appservice mode adopts these).
    tagged: dict[str, str] = field(default_factory=dict)
    # The stored space is kept (else the sync makes one, or finds it again by its tag).
    space_kept: bool = True
    space_is_new: bool = False

    @property
    def admin(self) -> str:
        return self.core_users[0] if self.core_users else ""

    @property
    def bot(self) -> str:
        return self.core_users[-1] if self.core_users else ""


async def _blocked_if_deactivated(
    admin: MatrixClient, mapping: AgentMapping | None, planned: PlannedAction, fate: str
) -> PlannedAction:
    """The sync asks the same before letting the agent back in (`_refuse_if_deactivated`)."""
    if mapping is None or fate not in ("rejoin", "replace"):
        return planned
    if await admin.account_deactivated(mapping.matrix_user_id):
        return replace(planned, action="blocked", detail="agent user deactivated; room kept")
    return planned


def _fate(mapping: AgentMapping | None, seen: _Seen) -> str:
    room = _room(mapping, seen)
    if room is None or mapping is None or not mapping.created or not mapping.room_created:
        return "unseen"
    return room_fate(room, mapping, seen.admin)


def _room(mapping: AgentMapping | None, seen: _Seen) -> RoomState | None:
    if seen.homeserver is None or mapping is None or not mapping.room_id:
        return None
    return seen.homeserver.room(mapping.room_id)


def _plan_agent(
    agent: Agent, mapping: AgentMapping | None, seen: _Seen, config: SyncConfig
) -> PlannedAction:
    def act(action: str, detail: str = "", actions: list[Action] | None = None) -> PlannedAction:
        lines = tuple(done.describe() for done in actions or [])
        return PlannedAction(agent.id, agent.name, action, detail, lines)

    if mapping is None and agent.id in seen.tagged:
        # Appservice mode adopts what a lost data directory knew: the user, and the room by
        # its tag (password mode refuses a deployment it has no passwords for).
        return act("ok", f"found again: room {seen.tagged[agent.id]}")
    if mapping is None or not mapping.created:
        return act("create", "user, room, space membership")
    if not mapping.room_id or not mapping.room_created:
        return act("create_room")
    room, fate = _room(mapping, seen), _fate(mapping, seen)
    if fate == "replace":
        return act("create_room", "the agent is out of its room and the admin may not let it in")
    if room is not None and fate == "rejoin":  # the room as it will be: the agent back in
        room = rejoined(room, mapping.matrix_user_id)
    actions = room_actions(_facts(agent, mapping, room, seen, config))
    stopped = blocked(actions)
    lists = {action.listed_as for action in actions}
    if stopped is not None:
        return act("blocked", stopped.blocked, actions)
    if "renamed" in lists:
        return act("rename", f"{mapping.agent_name!r} -> {agent.name!r}", actions)
    if seen.homeserver is None:
        return act("ok")
    if room is None:
        return act("repair", ADMIN_OUT, actions)
    back = members_back(room, mapping, seen.core_users)
    if "repaired" in lists or back or fate in ("follow", "rejoin"):
        text = _drift_text(_room(mapping, seen) or room, mapping, seen, actions)
        return act("repair", text, actions)
    if "migrated" in lists:
        return act("migrate", "into the new space", actions)
    return act("ok")


def _facts(
    agent: Agent, mapping: AgentMapping, room: RoomState | None, seen: _Seen, config: SyncConfig
) -> RoomFacts:
    listed = seen.homeserver is not None and bool(seen.space_id) and seen.space_kept
    children = (
        children_of(seen.homeserver, seen.space_id or "") if listed and seen.homeserver else set()
    )
    return RoomFacts(
        mapping=mapping,
        agent_name=agent.name,
        room=room,
        expected_name=clip(room_name(config.room_name_template, agent.id, agent.name)),
        admin=seen.admin,
        bot=seen.bot,
        space_id=(seen.space_id or "") if seen.space_kept else "",  # a new space: no links yet
        listed_in_space=seen.homeserver is None or mapping.room_id in children,
        space_is_new=seen.space_is_new,
    )


def _tagged(homeserver: HomeserverView | None, adopting: bool) -> dict[str, str]:
    if homeserver is None or not adopting:
        return {}
    found: dict[str, str] = {}
    for room_id in sorted(homeserver.joined()):
        tag = (homeserver.room(room_id) or RoomState()).content(AGENT_TAG) or {}
        if isinstance(tag.get("agent_id"), str):
            found.setdefault(tag["agent_id"], room_id)
    return found


def _drift_text(room: RoomState, mapping: AgentMapping, seen: _Seen, actions: list[Action]) -> str:
    """What differs, in words (what is done about it, and by whom, is in the actions)."""
    user, space_id = mapping.matrix_user_id, seen.space_id
    found = room_drift(room, user, seen.core_users, "", space_id, mapping.agent_id)
    ignored = mapping.ignored_upgrade
    upgraded = None if found.upgraded_to == ignored else found.upgraded_to
    named = any(action.what == ROOM_NAME for action in actions)
    found = replace(found, renamed=named, upgraded_to=upgraded)
    parts = [found.describe()] if found.describe() else []
    parts += ["power levels lowered"] if any(a.step == "power" for a in actions) else []
    parts += ["room missing from the space"] if any(a.what == SPACE_CHILD for a in actions) else []
    return "; ".join(parts)
