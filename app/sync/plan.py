"""A dry run: what the next sync would do, with no write to Matrix or to the state files.

Only stored access tokens are used (a login would create a device, which is a write); when
the admin has none, the admin's view of Matrix is not consulted and the plan says so. Even
then the homeserver is asked what needs no token: that it is one (`/versions`), and whether
the names of the bot and of agents to create are taken (`register/available`), so a wrong URL
or an existing deployment is never planned as "create everything".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from app.config import SyncConfig
from app.errors import (
    MalformedResponse,
    MatrixError,
    MatrixForbidden,
    MatrixUnknownToken,
    SyncError,
)
from app.letta import Agent, LettaClient
from app.matrix import MatrixClient
from app.retry import RetryPolicy
from app.state import AgentMapping, Store
from app.state.opening import read_store
from app.sync.accounts import Accounts
from app.sync.identity import read_only_admin
from app.sync.naming import agent_localpart, localpart_of
from app.sync.report import describe
from app.sync.setup_errors import naming_the_homeserver, not_a_homeserver
from app.sync.space import SpaceView, read_space
from app.transport import Transport

# New agents whose names are checked against the homeserver. Synapse paces
# `register/available` to about one answer a second per address, so a handful, not all.
NAME_CHECKS = 5


@dataclass(frozen=True)
class PlannedAction:
    agent_id: str
    agent_name: str
    action: str  # create, blocked, create_room, rename, repair, migrate, ok
    detail: str = ""


@dataclass
class SyncPlan:
    space: str  # keep, create, unknown
    matrix_checked: bool
    actions: list[PlannedAction] = field(default_factory=list)
    removed_from_letta: list[str] = field(default_factory=list)
    letta_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def count(self, action: str) -> int:
        return sum(1 for planned in self.actions if planned.action == action)


async def make_plan(config: SyncConfig, transport: Transport) -> SyncPlan:
    store = await read_store(config)
    try:
        return await _make_plan(config, transport, store)
    finally:
        await store.aclose()


async def _make_plan(config: SyncConfig, transport: Transport, store: Store) -> SyncPlan:
    policy = RetryPolicy(budget=config.retry_budget)
    matrix = MatrixClient.connect(transport, config.homeserver_url, policy=policy)
    await _check_is_homeserver(matrix, config.homeserver_url)
    appservice = config.appservice_registration is not None
    admin = (
        await read_only_admin(matrix, store, config)
        if appservice
        else _read_only_admin(matrix, store, config)
    )
    try:
        view, admin_rooms = await _matrix_view(admin, store.space.space_id)
    except (MatrixUnknownToken, MatrixForbidden):
        # An expired token, or an appservice admin not registered yet: say "not checked".
        admin, view, admin_rooms = None, None, None
    space = "unknown" if admin is None else ("keep" if view is not None else "create")
    plan = SyncPlan(space=space, matrix_checked=admin is not None)
    letta = LettaClient.connect(transport, config.letta_url, config.letta_token, policy=policy)
    try:
        listing = await letta.list_agents(config.letta_page_size)
    except SyncError as exc:
        plan.letta_error = describe(exc)
        return plan
    agents = listing.agents
    plan.removed_from_letta = listing.missing(store.mappings) if agents else []
    for agent in agents:
        plan.actions.append(_plan_agent(agent, store.get(agent.id), view, admin_rooms, plan))
    if appservice:
        plan.notes.append("appservice mode: agent users that exist already are adopted")
    else:
        unmapped = {agent.id for agent in agents if store.get(agent.id) is None}
        await _check_names(matrix, config, plan, unmapped)
    return plan


async def _check_is_homeserver(matrix: MatrixClient, url: str) -> None:
    with naming_the_homeserver(url):
        try:
            await matrix.versions()
        except MalformedResponse as exc:
            raise not_a_homeserver(url, exc.status) from exc


async def _check_names(
    matrix: MatrixClient, config: SyncConfig, plan: SyncPlan, unmapped: set[str]
) -> None:
    """Names the sync would register: free, or already someone's (read-only, no token).

    Only agents with no mapping at all: one whose registration was interrupted has its
    password saved, and the sync logs in with it.
    """
    new = [index for index, p in enumerate(plan.actions) if p.agent_id in unmapped]
    try:
        bot_free = await matrix.username_available(localpart_of(config.username))
        plan.notes.append("bot account: " + ("will be registered" if bot_free else "exists"))
        for index in new[:NAME_CHECKS]:
            planned = plan.actions[index]
            localpart = agent_localpart(planned.agent_id)
            if not await matrix.username_available(localpart):
                plan.actions[index] = replace(planned, action="blocked", detail=_taken(localpart))
    except MatrixForbidden:
        plan.notes.append("registration is closed here: names were not checked")
        return
    if len(new) > NAME_CHECKS:
        plan.notes.append(f"names checked for {NAME_CHECKS} of {len(new)} new agents")


def _taken(localpart: str) -> str:
    return (
        f"user {localpart} already exists and MATRIX_DATA_DIR holds no password for it "
        "(an existing deployment's data directory?)"
    )


def _read_only_admin(matrix: MatrixClient, store: Store, config: SyncConfig) -> MatrixClient | None:
    """The admin with its stored token but no credentials: it can never log in (a login
    creates a device and a token to save, both writes)."""
    stored = Accounts(matrix, store).stored(config.admin_user, config.admin_secret)
    if stored is None:
        return None
    return matrix.as_user(stored.user_id, stored.access_token)


async def _matrix_view(
    admin: MatrixClient | None, space_id: str | None
) -> tuple[SpaceView | None, set[str] | None]:
    if admin is None:
        return None, None
    rooms = set(await admin.joined_rooms())
    if not space_id or space_id not in rooms:
        return None, rooms
    try:
        return await read_space(admin, space_id), rooms
    except MatrixError:
        return None, rooms


def _plan_agent(
    agent: Agent,
    mapping: AgentMapping | None,
    view: SpaceView | None,
    admin_rooms: set[str] | None,
    plan: SyncPlan,
) -> PlannedAction:
    def act(action: str, detail: str = "") -> PlannedAction:
        return PlannedAction(agent.id, agent.name, action, detail)

    if mapping is None or not mapping.created:
        return act("create", "user, room, space membership")
    if not mapping.room_id or not mapping.room_created:
        return act("create_room")
    if mapping.agent_name != agent.name:
        return act("rename", f"{mapping.agent_name!r} -> {agent.name!r}")
    if admin_rooms is not None and mapping.room_id not in admin_rooms:
        return act("repair", "admin not in the room, or the room is gone")
    if plan.space == "create":
        return act("migrate", "into the new space")
    if view is not None and mapping.room_id not in view.children:
        return act("repair", "room missing from the space")
    return act("ok")
