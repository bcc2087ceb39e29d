"""What a dry run asks the homeserver: only reads, never a login (a new device and a token
to save are writes), never a registration."""

from __future__ import annotations

from dataclasses import replace

from app.errors import MalformedResponse, MatrixForbidden, MatrixLoginRefused, MatrixUnknownToken
from app.identity import Identity
from app.identity.naming import agent_localpart
from app.matrix import MatrixClient
from app.matrix.ids import localpart_of
from app.state import AgentMapping
from app.sync.plan_types import PlannedAction, SyncPlan
from app.sync.rooms import agent_is_in_room
from app.sync.setup_errors import naming_the_homeserver, not_a_homeserver

ADMIN_OUT = "admin not in the room, or the room is gone"
# New agents whose names are checked against the homeserver. Synapse paces
# `register/available` to about one answer a second per address, so a handful, not all.
NAME_CHECKS = 5


class AgentReaders:
    """Agent users as a dry run may act: with a stored token (password mode) or as the
    appservice acts for them; never a login (a device and a token to save are writes)."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    async def agent(self, mapping: AgentMapping) -> MatrixClient | None:
        return self._identity.read_only_agent(mapping.matrix_user_id)


async def room_alive(
    agent: MatrixClient | None, mapping: AgentMapping, planned: PlannedAction
) -> PlannedAction:
    """The admin is out of the room: only the agent can tell whether it lives (as the sync
    asks). Joined: the admin is brought back; not: a new room."""
    if agent is None:
        return planned
    try:
        alive = await agent_is_in_room(agent, mapping.room_id or "")
    except (MatrixUnknownToken, MatrixLoginRefused):
        return replace(planned, detail=f"{ADMIN_OUT}; the agent's token is refused")
    if alive:
        return replace(planned, detail="admin not in the room")
    return replace(planned, action="create_room", detail="the room is gone or the agent left")


async def check_is_homeserver(matrix: MatrixClient, url: str) -> None:
    with naming_the_homeserver(url):
        try:
            await matrix.versions()
        except MalformedResponse as exc:
            raise not_a_homeserver(url, exc.status) from exc


async def check_names(
    matrix: MatrixClient, bot_login: str, plan: SyncPlan, unmapped: set[str]
) -> None:
    """Names the sync would register: free, or already someone's (read-only, no token).

    Only agents with no mapping at all: one whose registration was interrupted has its
    password saved, and the sync logs in with it.
    """
    new = [index for index, p in enumerate(plan.actions) if p.agent_id in unmapped]
    try:
        bot_free = await matrix.username_available(localpart_of(bot_login))
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
