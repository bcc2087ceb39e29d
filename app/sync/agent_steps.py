"""What every step of one agent's sync shares: the agent, its mapping, its client."""

from __future__ import annotations

from app.errors import SyncError
from app.letta import Agent
from app.matrix import MatrixClient
from app.state import AgentMapping
from app.sync import rooms
from app.sync.context import SyncContext
from app.sync.naming import agent_localpart, room_name


class RoomJoinFailed(SyncError):
    """The admin or the bot could not join an agent room; retried on the next sync."""


class AgentDeactivated(SyncError):
    """The agent's account was deactivated on the homeserver; its room is kept."""


# Extra mapping field: the state types the agent's room refuses to let us write (an upgraded
# room leaves our accounts without power), with that room's id; not asked again there.
REFUSED_STATE = "state_refused"


def refused_types(mapping: AgentMapping) -> set[str]:
    """The state types the mapping's current room refused us."""
    refused = mapping.extra.get(REFUSED_STATE)
    if not isinstance(refused, dict) or refused.get("room_id") != mapping.room_id:
        return set()
    types = refused.get("types")
    return {t for t in types if isinstance(t, str)} if isinstance(types, list) else set()


class AgentSteps:
    def __init__(self, ctx: SyncContext, agent: Agent) -> None:
        self.ctx = ctx
        self.agent = agent
        self.step = "mapping"
        existing = ctx.store.get(agent.id)
        self.mapping = existing or self._new_mapping()
        self._unsaved = existing is None
        self._client: MatrixClient | None = None
        self._user_is_new = False
        # A room created by this very sync is empty: its import needs no look at the room.
        self._room_is_new = False

    def _new_mapping(self) -> AgentMapping:
        localpart = agent_localpart(self.agent.id)
        mapping = AgentMapping(
            agent_id=self.agent.id,
            agent_name=self.agent.name,
            matrix_user_id=f"@{localpart}:{self.ctx.server_name}",
            matrix_password=self.ctx.accounts.new_agent_password(),
        )
        return mapping

    async def save(self) -> None:
        await self.ctx.store.save_mapping(self.mapping)

    async def client(self) -> MatrixClient:
        if self._client is None:
            m = self.mapping
            self._client = await self.ctx.accounts.agent_client(m.matrix_user_id, m.matrix_password)
        return self._client

    @property
    def expected_room_name(self) -> str:
        return rooms.clip(
            room_name(self.ctx.config.room_name_template, self.agent.id, self.agent.name)
        )

    async def _remember_refused(self, event_type: str) -> None:
        types = sorted(refused_types(self.mapping) | {event_type})
        self.mapping.extra[REFUSED_STATE] = {"room_id": self.mapping.room_id, "types": types}
        await self.save()

    async def _writer(self) -> MatrixClient:
        """Who writes the room's state: the admin where it is in the room (an upgraded room
        leaves the agent without power), else the agent, the room's creator."""
        if (self.mapping.room_id or "") in self.ctx.admin_rooms:
            return self.ctx.admin
        return await self.client()
