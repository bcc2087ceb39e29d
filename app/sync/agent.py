"""One agent's sync: user, room, space membership, renames and repairs.

Each step checks what is already true before acting (the steady state makes no request for
an agent), tolerates "already done", and saves the mapping as soon as something changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from app.errors import MatrixForbidden
from app.sync import drift, power, rooms, space
from app.sync.agent_steps import RoomJoinFailed
from app.sync.history import import_history, posted_keys
from app.sync.membership import ensure_joined
from app.sync.naming import localpart_of
from app.sync.room_steps import HISTORY_PENDING, RoomSteps
from app.sync.state_writes import (
    WRITTEN,
    StatePowerMissing,
    blocked_reason,
    refused_by,
    writers,
)

log = logging.getLogger(__name__)

# Extra mapping field: messages already posted by an import that was interrupted.
HISTORY_DONE = "history_import_done"


class AgentSync(RoomSteps):
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
        # A write no account has the power for fails the agent, but only once the other
        # steps ran: the members still join, the history still lands.
        blocked: list[tuple[str, StatePowerMissing]] = []
        self.step = "power"
        await self._unless_blocked(self.ensure_power(), blocked)
        self.step = "rename"
        await self._unless_blocked(self.follow_rename(), blocked)
        # Space before members: a member that cannot join must not keep the room out of it.
        self.step = "space"
        await self._unless_blocked(self.ensure_in_space(parent_already_set=created), blocked)
        self.step = "tag"
        await self._unless_blocked(self.ensure_tagged(), blocked)
        self.step = "members"
        await self.ensure_members()
        if self.mapping.extra.get(HISTORY_PENDING):
            self.step = "history"
            await self.import_history()
        if blocked:
            self.step, error = blocked[0]
            raise error

    async def _unless_blocked(
        self, step: Awaitable[None], blocked: list[tuple[str, StatePowerMissing]]
    ) -> None:
        try:
            await step
        except StatePowerMissing as exc:
            blocked.append((self.step, exc))

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
        if renamed:
            # The user's name first: it follows even where the room's name may not (an
            # upgraded room leaves no power to us); the view shows the room's on later syncs.
            await (await self.client()).set_displayname(rooms.clip(self.agent.name))
            self.mapping.agent_name = self.agent.name
            await self.save()
        if self.mapping.room_id and self.mapping.room_created:
            await self._write_room_name(self.mapping.room_id)
        (self.ctx.report.renamed if renamed else self.ctx.report.repaired).append(self.agent.id)

    async def _write_room_name(self, room_id: str) -> None:
        await self.write_state(room_id, drift.ROOM_NAME, {"name": self.expected_room_name})

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

    async def ensure_power(self) -> None:
        """The admin or bot demoted below what the library's writes need: the agent user (or
        whoever may) restores the level, as it restores a name changed by hand."""
        room_id = self.mapping.room_id or ""
        room = self.ctx.homeserver.room(room_id)
        core = [self.ctx.admin.user_id or "", self.ctx.bot.user_id or ""]
        lowered = power.demoted(room, core, WRITTEN) if room is not None else []
        if room is None or not lowered:
            return
        # The account write_state will use: the first able one, less known refusals.
        able = writers(self.mapping, room, self.writer_order(), power.POWER_LEVELS)
        writer = next((user for user in able if user not in lowered), None)
        if writer is None:
            order, kind = self.writer_order(), power.POWER_LEVELS
            refused = refused_by(self.mapping, room, kind)
            raise StatePowerMissing(blocked_reason(room_id, room, order, kind, refused))
        log.info("restoring the power of %s in room %s", ", ".join(lowered), room_id)
        content = power.restored_levels(room, lowered, writer)
        await self.write_state(room_id, power.POWER_LEVELS, content)
        self.ctx.report.repaired.append(self.agent.id)

    def _note_rejoined(self, user_id: str) -> None:
        """A member that had been in the room and was joined again is a repair."""
        was_joined = self.mapping.invitation_status.get(user_id) == "joined"
        repaired = self.ctx.report.repaired
        if was_joined and not self._room_is_new and self.agent.id not in repaired:
            repaired.append(self.agent.id)

    async def ensure_tagged(self) -> None:
        """The room's tag names its agent, so a lost data directory finds the room again: put
        back when it was emptied, removed or changed."""
        room_id = self.mapping.room_id or ""
        room = self.ctx.homeserver.room(room_id)
        wanted = {"agent_id": self.agent.id}
        if room is None or room.content(rooms.AGENT_TAG) == wanted:
            return  # a room the view does not show yet was tagged as it was made
        log.info("the tag of room %s (agent %s) is wrong; restoring it", room_id, self.agent.id)
        await self.write_state(room_id, rooms.AGENT_TAG, wanted)
        if self.agent.id not in self.ctx.report.repaired:
            self.ctx.report.repaired.append(self.agent.id)

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
                self._note_rejoined(user_id)
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
        link_parent = not parent_already_set and (unlisted or parent_lost)
        if not link_parent and not unlisted:
            return
        if unlisted:  # first: the space lists the room even where the room refuses its link
            await space.add_child(self.ctx.admin, view, room_id, self.ctx.server_name)
        if link_parent:
            await self._link_parent(room_id)
        if parent_already_set:
            return
        (
            self.ctx.report.migrated if view.created or view.found else self.ctx.report.repaired
        ).append(self.agent.id)

    async def _link_parent(self, room_id: str) -> None:
        view = self.ctx.space
        content = space.parent_content(self.ctx.server_name)
        await self.write_state(room_id, space.SPACE_PARENT, content, view.space_id)
        if view.replaced:
            # Empty content removes the link to the space that is gone.
            await self.write_state(room_id, space.SPACE_PARENT, {}, view.replaced)

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
