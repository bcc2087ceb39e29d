"""One agent's sync: user, room, space membership, renames and repairs.

Each step checks what is already true before acting (the steady state makes no request for
an agent), tolerates "already done", and saves the mapping as soon as something changed.
"""

from __future__ import annotations

import logging

from app.errors import MatrixError, MatrixForbidden, SyncError
from app.letta import Agent
from app.matrix import MatrixClient
from app.state import AgentMapping
from app.sync import drift, rooms, space
from app.sync.context import SyncContext
from app.sync.history import import_history, posted_keys
from app.sync.membership import ensure_joined, invite_back
from app.sync.naming import agent_localpart, localpart_of, room_name

log = logging.getLogger(__name__)

# Extra mapping field, set while a new room still awaits its history import.
HISTORY_PENDING = "history_import_pending"
# Extra mapping field: messages already posted by an import that was interrupted.
HISTORY_DONE = "history_import_done"
# Extra mapping field: the room whose state refused our m.space.parent (an upgraded room).
PARENT_REFUSED = "space_parent_refused"


class RoomJoinFailed(SyncError):
    """The admin or the bot could not join an agent room; retried on the next sync."""


class AgentDeactivated(SyncError):
    """The agent's account was deactivated on the homeserver; its room is kept."""


class AgentSync:
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

    async def run(self) -> None:
        if self._unsaved:
            # Saved (and fsynced) before registering: a crash or power cut in between never
            # strands an account whose password nobody knows.
            await self.ctx.store.save_mapping(self.mapping, fsync=True)
            self._unsaved = False
        self.step = "user"
        await self.ensure_user()
        # The room comes before the rename: renaming a room that is gone would fail forever.
        self.step = "room"
        created = await self.ensure_room()
        self.step = "rename"
        await self.follow_rename()
        # Space before members: a member that cannot join must not keep the room out of it.
        self.step = "space"
        await self.ensure_in_space(parent_already_set=created)
        self.step = "members"
        await self.ensure_members()
        if self.mapping.extra.get(HISTORY_PENDING):
            self.step = "history"
            await self.import_history()

    async def ensure_user(self) -> None:
        if self.mapping.created:
            return
        m = self.mapping
        client = self.ctx.accounts.stored(m.matrix_user_id, m.matrix_password)
        if client is None:
            localpart = localpart_of(m.matrix_user_id)
            client, self._user_is_new = await self.ctx.accounts.register_agent(
                localpart, m.matrix_password
            )
        self._client = client
        await client.set_displayname(rooms.clip(self.agent.name))
        m.created = True
        await self.save()
        if self._user_is_new:
            self.ctx.report.users_created.append(self.agent.id)

    async def follow_rename(self) -> None:
        renamed = self.mapping.agent_name != self.agent.name
        room = self.ctx.homeserver.room(self.mapping.room_id or "")
        stale_room_name = room is not None and drift.room_name(room) != self.expected_room_name
        if not renamed and not stale_room_name:
            return
        if self.mapping.room_id and self.mapping.room_created:
            content = {"name": self.expected_room_name}
            await (await self._writer()).put_state_event(
                self.mapping.room_id, "m.room.name", content
            )
        if renamed:
            await (await self.client()).set_displayname(rooms.clip(self.agent.name))
            self.mapping.agent_name = self.agent.name
            await self.save()
            self.ctx.report.renamed.append(self.agent.id)
        else:
            self.ctx.report.repaired.append(self.agent.id)

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
        replacement = drift.replacement_of(room)
        if replacement is not None:
            await self._follow_upgrade(room_id, replacement)
            return True
        membership = room.membership(self.mapping.matrix_user_id)
        if membership == "join":
            return True
        await self._refuse_if_deactivated(room_id)
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
        self.ctx.report.repaired.append(self.agent.id)
        return True

    async def _follow_upgrade(self, old_room: str, new_room: str) -> None:
        """An upgraded room lives on in its replacement: the agent moves there. Its power
        is not copied over (the upgrader is the new room's creator), so the admin does the
        writes; whoever the upgrader invited lets the other in."""
        admin = self.ctx.admin
        try:
            await admin.join(new_room)
        except MatrixForbidden:
            agent = await self._join_agent(new_room, old_room)
            await agent.invite(new_room, admin.user_id or "")
            await admin.join(new_room)
        self.ctx.admin_rooms.add(new_room)
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

    async def _writer(self) -> MatrixClient:
        """Who writes the room's state: the admin where it is in the room (an upgraded room
        leaves the agent without power), else the agent, the room's creator."""
        if (self.mapping.room_id or "") in self.ctx.admin_rooms:
            return self.ctx.admin
        return await self.client()

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
        if history_pending and self.ctx.config.history_import_limit > 0:
            self.mapping.extra[HISTORY_PENDING] = True
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

    async def invite_new_people(self) -> None:
        """Invite configured people this room has never invited (the list may have grown)."""
        room_id = self.mapping.room_id or ""
        room = self.ctx.homeserver.room(room_id)
        for person in self.ctx.config.invite_users:
            if person in self.mapping.invitation_status or person == self.mapping.matrix_user_id:
                continue
            if room is None or room.membership(person) not in ("join", "invite"):
                try:
                    await (await self.client()).invite(room_id, person)
                except MatrixForbidden as exc:
                    # Already in an upgraded room, say: the next sync's view tells.
                    log.warning("cannot invite %s to %s: %s", person, room_id, exc)
                    continue
            self.mapping.invitation_status[person] = "invited"
            await self.save()

    async def ensure_members(self) -> None:
        await self.invite_new_people()
        room_id = self.mapping.room_id or ""
        changed = False
        for member, joined in self.ctx.members_to_join():
            user_id = member.user_id or ""
            if room_id in joined and self.mapping.invitation_status.get(user_id) == "joined":
                continue
            status = (
                "joined"
                if room_id in joined
                else await ensure_joined(member, await self.client(), room_id)
            )
            if status == "joined":
                joined.add(room_id)
            changed = changed or self.mapping.invitation_status.get(user_id) != status
            self.mapping.invitation_status[user_id] = status
        if changed:
            await self.save()
        managed = [member.user_id or "" for member, _ in self.ctx.members_to_join()]
        states = self.mapping.invitation_status
        failed = [user for user in managed if states.get(user) == "failed"]
        if failed:
            raise RoomJoinFailed(f"could not join {', '.join(failed)} to room {room_id}")

    async def ensure_in_space(self, *, parent_already_set: bool) -> None:
        room_id = self.mapping.room_id or ""
        view = self.ctx.space
        room = self.ctx.homeserver.room(room_id)
        unlisted = room_id not in view.children
        parent_lost = room is not None and not drift.has_parent(room, view.space_id)
        refused = self.mapping.extra.get(PARENT_REFUSED) == room_id
        link_parent = not parent_already_set and not refused and (unlisted or parent_lost)
        if not link_parent and not unlisted:
            return
        if link_parent:
            await self._link_parent(room_id)
        if unlisted:
            await space.add_child(self.ctx.admin, view, room_id, self.ctx.server_name)
        if parent_already_set:
            return
        (
            self.ctx.report.migrated if view.created or view.found else self.ctx.report.repaired
        ).append(self.agent.id)

    async def _link_parent(self, room_id: str) -> None:
        view = self.ctx.space
        client = await self._writer()
        try:
            content = space.parent_content(self.ctx.server_name)
            await client.put_state_event(room_id, space.SPACE_PARENT, content, view.space_id)
            if view.replaced:
                # Empty content removes the link to the space that is gone.
                await client.put_state_event(room_id, space.SPACE_PARENT, {}, view.replaced)
        except MatrixForbidden as exc:
            # An upgraded room leaves our accounts without power over its state; the space's
            # own link lists it all the same. Not asked again for this room.
            log.warning("cannot link room %s to the space: %s", room_id, exc)
            self.mapping.extra[PARENT_REFUSED] = room_id
            await self.save()

    async def import_history(self) -> None:
        limit = self.ctx.config.history_import_limit
        room_id = self.mapping.room_id or ""
        client = await self.client()
        done = self.mapping.extra.setdefault(HISTORY_DONE, [])
        already = set(done)
        if not self._room_is_new:
            # Resuming: a post may have landed without being recorded (a kill, a lost reply).
            already |= await posted_keys(client, room_id)

        async def record(key: str) -> None:
            done.append(key)
            await self.save()

        result = await import_history(
            self.ctx.letta, client, self.agent.id, room_id, limit, done=already, on_sent=record
        )
        self.mapping.extra.pop(HISTORY_PENDING, None)
        self.mapping.extra.pop(HISTORY_DONE, None)
        await self.save()
        if result.posted:
            self.ctx.report.history_imported[self.agent.id] = result.posted
        if result.skipped:
            self.ctx.report.history_skipped[self.agent.id] = result.skipped
