"""`AgentRun`: one agent's sync as a state object, which every step reads and advances.

The steps are functions over it, one module per concern: the user (`app.sync.agent`), the
room (`app.sync.room_steps`), the room's writes (`app.sync.room_writes`), the members
(`app.sync.member_steps`). What they share lives here: the agent, its mapping, its client,
and the writes made so far.
"""

from __future__ import annotations

from typing import Any

from app.errors import MatrixForbidden, SyncError
from app.identity.naming import agent_user_id
from app.letta import Agent
from app.matrix import MatrixClient
from app.matrix.view import RoomState
from app.state import AgentMapping
from app.sync import rooms
from app.sync.confirm import StateWrite
from app.sync.context import SyncContext
from app.sync.decide import rejoined, writer_order
from app.sync.rooms import room_name
from app.sync.state_writes import StatePowerMissing, write_with_power


class RoomJoinFailed(SyncError):
    """The admin or the bot could not join an agent room; retried on the next sync."""


class AgentDeactivated(SyncError):
    """The agent's account was deactivated on the homeserver; its room is kept."""


class AgentRun:
    def __init__(self, ctx: SyncContext, agent: Agent) -> None:
        self.ctx = ctx
        self.agent = agent
        self.step = "mapping"
        existing = ctx.store.get(agent.id)
        self.mapping = existing or self._new_mapping()
        self.unsaved = existing is None
        self._client: MatrixClient | None = None
        self.user_is_new = False
        # A room created by this very sync is empty: its import needs no look at the room.
        self.room_is_new = False
        # The agent was let back into its room by this sync: it may write there now.
        self.agent_rejoined = False

    def _new_mapping(self) -> AgentMapping:
        mapping = AgentMapping(
            agent_id=self.agent.id,
            agent_name=self.agent.name,
            matrix_user_id=agent_user_id(self.agent.id, self.ctx.server_name),
            matrix_password=self.ctx.identity.new_agent_password(),
        )
        return mapping

    async def save(self) -> None:
        await self.ctx.store.save_mapping(self.mapping)

    def use_client(self, client: MatrixClient) -> None:
        """The agent's client, as registration or a stored token gave it."""
        self._client = client

    async def client(self) -> MatrixClient:
        if self._client is None:
            m = self.mapping
            self._client = await self.ctx.identity.agent_client(m.matrix_user_id, m.matrix_password)
        return self._client

    @property
    def expected_room_name(self) -> str:
        return rooms.clip(
            room_name(self.ctx.policy.room_name_template, self.agent.id, self.agent.name)
        )

    def writer_order(self) -> list[str]:
        return writer_order(
            self.ctx.admin.user_id, self.mapping.matrix_user_id, self.ctx.bot.user_id
        )

    def room_now(self, room_id: str) -> RoomState | None:
        """The room as the admin's view shows it, with the agent back in when this sync let
        it in (the view was read before)."""
        room = self.ctx.homeserver.room(room_id)
        if room is not None and self.agent_rejoined:
            room = rejoined(room, self.mapping.matrix_user_id)
        return room

    async def client_of(self, user_id: str) -> MatrixClient:
        if user_id == self.mapping.matrix_user_id:
            return await self.client()
        return self.ctx.admin if user_id == self.ctx.admin.user_id else self.ctx.bot

    def note_written(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        """The sync's last read of the view confirms it (`app.sync.confirm`)."""
        agent = self.agent
        write = StateWrite(agent.id, agent.name, self.step, room_id, event_type, state_key, content)
        self.ctx.writes.append(write)

    async def write_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        """Write with the account that has the power (see app.sync.state_writes); returns
        the account that wrote."""
        room = self.room_now(room_id)
        if room is None:  # not in the admin's view (yet): the room's creator, the agent, writes
            agent = await self.client()
            try:
                await agent.put_state_event(room_id, event_type, content, state_key)
            except MatrixForbidden as exc:
                raise StatePowerMissing(
                    f"the homeserver refused {event_type} in room {room_id} to {agent.user_id} "
                    f"({exc.error}); the next sync's view names who has which power"
                ) from exc
            return agent.user_id or ""
        before = self.mapping.refused_state

        async def write(client: MatrixClient) -> None:
            await client.put_state_event(room_id, event_type, content, state_key)
            self.note_written(room_id, event_type, state_key, content)

        try:
            return await write_with_power(
                self.mapping, room, self.writer_order(), self.client_of, write, event_type
            )
        finally:
            if self.mapping.refused_state != before:
                await self.save()
