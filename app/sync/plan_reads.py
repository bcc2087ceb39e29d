"""What a dry run asks the agent users: only reads, never a login (a new device and a token
to save are writes)."""

from __future__ import annotations

from dataclasses import replace

from app.config import SyncConfig
from app.errors import MatrixLoginRefused, MatrixUnknownToken
from app.matrix import MatrixClient
from app.state import AgentMapping, Store
from app.sync.identity import read_only_user
from app.sync.plan_types import PlannedAction
from app.sync.rooms import agent_is_in_room

ADMIN_OUT = "admin not in the room, or the room is gone"


class AgentReaders:
    """Agent users as a dry run may act: with a stored token (password mode) or as the
    appservice acts for them; never a login (a device and a token to save are writes)."""

    def __init__(self, matrix: MatrixClient, store: Store, config: SyncConfig) -> None:
        self._matrix, self._store, self._config = matrix, store, config

    async def agent(self, mapping: AgentMapping) -> MatrixClient | None:
        user = mapping.matrix_user_id
        if self._config.appservice_registration is not None:
            return await read_only_user(self._matrix, self._store, self._config, user)
        token = self._store.token(user)
        return self._matrix.as_user(user, token.access_token) if token else None


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
