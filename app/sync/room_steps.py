"""The agent's room: kept while it lives, brought back in order when it drifted (the agent
out of it, the room upgraded), replaced only when nothing else can be done."""

from __future__ import annotations

import contextlib
import logging

from app.errors import MatrixError, MatrixForbidden
from app.matrix import MatrixClient
from app.sync import drift, rooms, space
from app.sync.agent_steps import AgentDeactivated, AgentSteps, RoomJoinFailed
from app.sync.decide import room_fate
from app.sync.membership import invite_back

log = logging.getLogger(__name__)


class RoomSteps(AgentSteps):
    async def ensure_room(self) -> bool:
        """Make sure the agent has a live room; True when a new room was created."""
        room_id = self.mapping.room_id
        if room_id and self.mapping.room_created:
            if await self._keep_room(room_id):
                return False
            await self._drop_dead_room(room_id)
        dead = {room_id} if room_id else set()
        if not self._user_is_new:
            found = await rooms.find_tagged_room(await self.client(), self.agent.id, dead)
            if found:
                # A room whose creation was never recorded (a crash, a lost reply) never got
                # its history either: import it now, skipping whatever the room already has.
                await self._record_room(found, history_pending=True)
                return False
        room_id = await self._create_room()
        self._room_is_new = True
        await self._record_room(room_id, history_pending=True)
        self.ctx.report.rooms_created.append(self.agent.id)
        return True

    async def _keep_room(self, room_id: str) -> bool:
        """Whether the recorded room stays the agent's room, brought back in order if need be."""
        room = self.ctx.homeserver.room(room_id)
        if room is None:
            # The admin is not in it (the members step brings it back): only the agent can tell.
            return await rooms.agent_is_in_room(await self.client(), room_id)
        fate = room_fate(room, self.mapping, self.ctx.admin.user_id or "")
        if fate == "follow":
            await self._follow_upgrade(room_id, drift.replacement_of(room) or "")
            return True
        if fate == "keep":
            return True
        await self._refuse_if_deactivated(room_id)
        membership = room.membership(self.mapping.matrix_user_id)
        if fate == "replace":
            log.warning(
                "the admin may not let %s back into %s", self.mapping.matrix_user_id, room_id
            )
            return False
        return await self._rejoin_agent(room_id, membership)

    async def _refuse_if_deactivated(self, room_id: str) -> None:
        """A deactivated agent keeps its room and its place in the space: no new room for an
        account that can never use it, and nothing lost should it be reactivated."""
        user = self.mapping.matrix_user_id
        if await self.ctx.admin.account_deactivated(user):
            raise AgentDeactivated(
                f"the account {user} has been deactivated on the homeserver: this agent "
                f"cannot be synced (its room {room_id} is kept)"
            )

    async def _rejoin_agent(self, room_id: str, membership: str | None) -> bool:
        """Invite the agent back (lifting a ban where the admin may); False when the admin
        cannot, and the room must be replaced."""
        user = self.mapping.matrix_user_id
        try:
            await invite_back(self.ctx.admin, room_id, user, banned=membership == "ban")
        except MatrixForbidden as exc:
            log.warning("cannot bring %s back into %s: %s", user, room_id, exc)
            return False
        # The agent's own errors (a refused login, say) are its failure: the room stays.
        await (await self.client()).join(room_id)
        self._agent_rejoined = True
        self.ctx.report.repaired.append(self.agent.id)
        return True

    async def _follow_upgrade(self, old_room: str, new_room: str) -> None:
        """An upgraded room lives on in its replacement: the agent moves there. Its power
        is not copied over (the upgrader is the new room's creator), so the admin does the
        writes; whoever the upgrader invited lets the other in."""
        admin = self.ctx.admin
        agent_in = False
        try:
            await admin.join(new_room)
        except MatrixForbidden:
            agent = await self._join_agent(new_room, old_room)
            agent_in = True
            await agent.invite(new_room, admin.user_id or "")
            await admin.join(new_room)
        self.ctx.admin_rooms.add(new_room)
        await self._refuse_if_not_continued(old_room, new_room)
        if not agent_in:
            await self._join_agent(new_room, old_room)
        try:
            await admin.put_state_event(new_room, rooms.AGENT_TAG, {"agent_id": self.agent.id})
        except MatrixForbidden as exc:  # the upgrader kept all power: the mapping records it
            log.info("cannot tag %s: %s", new_room, exc)
        if old_room in self.ctx.space.children:
            await space.remove_child(admin, self.ctx.space, old_room)
        await self._untag(old_room)
        self.mapping.room_id, self.mapping.invitation_status = new_room, {}
        await self.save()
        self.ctx.report.repaired.append(self.agent.id)

    async def _refuse_if_not_continued(self, old_room: str, new_room: str) -> None:
        """Anyone with power in the room can send a tombstone: only a room whose creation
        names the old one as its predecessor is followed (once refused, never again)."""
        admin = self.ctx.admin
        create = await admin.get_state_event(new_room, "m.room.create") or {}
        predecessor = create.get("predecessor")
        if isinstance(predecessor, dict) and predecessor.get("room_id") == old_room:
            return
        self.mapping.ignored_upgrade = new_room
        await self.save()
        with contextlib.suppress(MatrixError):
            await admin.leave(new_room)
        self.ctx.admin_rooms.discard(new_room)
        raise RoomJoinFailed(
            f"room {old_room} names {new_room} as its replacement, but that room does not "
            "continue it: the tombstone is ignored and the room kept"
        )

    async def _join_agent(self, room_id: str, old_room: str) -> MatrixClient:
        agent = await self.client()
        try:
            await agent.join(room_id)
            return agent
        except MatrixForbidden:
            if room_id not in self.ctx.admin_rooms:
                raise RoomJoinFailed(
                    f"room {old_room} was upgraded to {room_id}, where neither the admin nor "
                    "the agent user is invited: invite one of them there"
                ) from None
        await self.ctx.admin.invite(room_id, self.mapping.matrix_user_id)
        await agent.join(room_id)
        return agent

    async def _drop_dead_room(self, room_id: str) -> None:
        log.warning(
            "room %s of agent %s is gone or abandoned; replacing it", room_id, self.agent.id
        )
        if room_id in self.ctx.space.children:
            await space.remove_child(self.ctx.admin, self.ctx.space, room_id)
        await self._untag(room_id)
        self.mapping.room_id, self.mapping.room_created = None, False
        self.mapping.invitation_status = {}
        await self.save()
        self.ctx.report.repaired.append(self.agent.id)

    async def _untag(self, room_id: str) -> None:
        """Empty the old room's tag, so that no later search ever adopts it again: the admin
        or the bot, whichever is still in it and may."""
        room = self.ctx.homeserver.room(room_id)
        if room is None:
            return
        for member in {
            self.ctx.admin.user_id: self.ctx.admin,
            self.ctx.bot.user_id: self.ctx.bot,
        }.values():
            if room.membership(member.user_id or "") != "join":
                continue
            try:
                await member.put_state_event(room_id, rooms.AGENT_TAG, {})
                return
            except MatrixError as exc:
                log.info("%s cannot untag %s: %s", member.user_id, room_id, exc)

    async def _record_room(self, room_id: str, *, history_pending: bool = False) -> None:
        self.mapping.room_id, self.mapping.room_created = room_id, True
        # Recorded with the room, so a failed import is retried by the next sync.
        if history_pending and self.ctx.policy.history_import_limit > 0:
            self.mapping.history_pending = True
        for user in self.ctx.invitees(self.mapping.matrix_user_id):
            self.mapping.invitation_status.setdefault(user, "invited")
        await self.save()

    async def _create_room(self) -> str:
        options = rooms.room_create_options(
            agent_id=self.agent.id,
            name=self.expected_room_name,
            invite=self.ctx.invitees(self.mapping.matrix_user_id),
            space_id=self.ctx.space.space_id,
            server_name=self.ctx.server_name,
        )
        return await (await self.client()).create_room(**options)
