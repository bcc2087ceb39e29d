"""One agent's sync: user, room, space membership, renames and repairs.

Each step checks what is already true before acting (the steady state makes no request for
an agent), tolerates "already done", and saves the mapping as soon as something changed.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace

from app.errors import MatrixForbidden
from app.matrix.view import RoomState
from app.sync import drift, power, rooms, space
from app.sync.agent_steps import RoomJoinFailed
from app.sync.decide import DISPLAYNAME, Action, RoomFacts, lowered_core_users, room_actions
from app.sync.history import import_history, posted_keys
from app.sync.membership import ensure_joined
from app.sync.room_steps import RoomSteps
from app.sync.state_writes import StatePowerMissing

log = logging.getLogger(__name__)


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
        await self.ensure_room()
        # A write no account has the power for fails the agent, but only once the other
        # steps ran: the members still join, the history still lands.
        blocked = await self.carry_out(room_actions(self.room_facts()))
        self.step = "members"
        await self.ensure_members()
        if self.mapping.history_pending:
            self.step = "history"
            await self.import_history()
        if blocked is not None:
            self.step, error = blocked
            raise error

    def room_facts(self) -> RoomFacts:
        """What the decision of the room's writes takes in (`app.sync.decide`)."""
        room_id = self.mapping.room_id or ""
        view = self.ctx.space
        return RoomFacts(
            mapping=self.mapping,
            agent_name=self.agent.name,
            room=self.room_now(room_id),
            expected_name=self.expected_room_name,
            admin=self.ctx.admin.user_id or "",
            bot=self.ctx.bot.user_id or "",
            space_id=view.space_id,
            listed_in_space=room_id in view.children,
            room_is_new=self._room_is_new,
            space_is_new=view.created or view.found,
        )

    async def carry_out(self, actions: list[Action]) -> tuple[str, StatePowerMissing] | None:
        """Each step's writes in turn; a step no account may write stops there, the others
        still run. Returns the first step blocked, with why."""
        first_blocked: tuple[str, StatePowerMissing] | None = None
        for step, grouped in itertools.groupby(actions, key=lambda action: action.step):
            self.step = step
            of_step, done = list(grouped), []
            try:
                for action in of_step:
                    account = await self._carry_out(action)
                    done.append(replace(action, account=account).describe())
            except StatePowerMissing as exc:
                first_blocked = first_blocked or (step, exc)
                continue
            finally:
                self.ctx.report.actions.setdefault(self.agent.id, []).extend(done)
            self._list_as({action.listed_as for action in of_step})
        return first_blocked

    def _list_as(self, lists: set[str]) -> None:
        for name in sorted(lists - {""}):
            listed: list[str] = getattr(self.ctx.report, name)
            listed.append(self.agent.id)

    async def _carry_out(self, action: Action) -> str:
        """Make one write; returns the account that made it."""
        if action.blocked:
            raise StatePowerMissing(action.blocked)
        room_id = self.mapping.room_id or ""
        if action.what == DISPLAYNAME:
            await (await self.client()).set_displayname(rooms.clip(self.agent.name))
            self.mapping.agent_name = self.agent.name
            await self.save()
            return self.mapping.matrix_user_id
        if action.what == space.SPACE_CHILD:
            await space.add_child(self.ctx.admin, self.ctx.space, room_id, self.ctx.server_name)
            content = space.child_content(self.ctx.server_name)
            self.note_written(self.ctx.space.space_id, space.SPACE_CHILD, room_id, content)
            return self.ctx.admin.user_id or ""
        if action.what == space.SPACE_PARENT:
            return await self._link_parent(room_id)
        return await self.write_state(room_id, action.what, self._content(action))

    def _content(self, action: Action) -> dict[str, object]:
        if action.what == drift.ROOM_NAME:
            return {"name": self.expected_room_name}
        if action.what == rooms.AGENT_TAG:
            return {"agent_id": self.agent.id}
        facts = self.room_facts()
        lowered = lowered_core_users(facts)
        log.info("restoring the power of %s in room %s", ", ".join(lowered), self.mapping.room_id)
        return power.restored_levels(facts.room or RoomState(), lowered, action.account)

    async def ensure_user(self) -> None:
        if self.mapping.created:
            return
        m = self.mapping
        client = self.ctx.identity.stored(m.matrix_user_id, m.matrix_password)
        if client is None:
            client, self._user_is_new = await self.ctx.identity.register_agent(
                m.matrix_user_id, m.matrix_password
            )
        self._client = client
        await client.set_displayname(rooms.clip(self.agent.name))
        m.created = True
        await self.save()
        if self._user_is_new:
            self.ctx.report.users_created.append(self.agent.id)

    async def invite_new_people(self) -> None:
        """Invite configured people this room has never invited (the list may have grown)."""
        room_id = self.mapping.room_id or ""
        room = self.ctx.homeserver.room(room_id)
        for person in self.ctx.policy.invite_users:
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

    def _note_rejoined(self, user_id: str) -> None:
        """A member that had been in the room and was joined again is a repair."""
        was_joined = self.mapping.invitation_status.get(user_id) == "joined"
        repaired = self.ctx.report.repaired
        if was_joined and not self._room_is_new and self.agent.id not in repaired:
            repaired.append(self.agent.id)

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

    async def _link_parent(self, room_id: str) -> str:
        view = self.ctx.space
        content = space.parent_content(self.ctx.server_name)
        account = await self.write_state(room_id, space.SPACE_PARENT, content, view.space_id)
        if view.replaced:
            # Empty content removes the link to the space that is gone.
            await self.write_state(room_id, space.SPACE_PARENT, {}, view.replaced)
        return account

    async def import_history(self) -> None:
        limit = self.ctx.policy.history_import_limit
        room_id = self.mapping.room_id or ""
        client = await self.client()
        done = self.mapping.history_done = self.mapping.history_done or []
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
        self.mapping.history_pending, self.mapping.history_done = False, None
        await self.save()
        if result.posted:
            self.ctx.report.history_imported[self.agent.id] = result.posted
        if result.skipped:
            self.ctx.report.history_skipped[self.agent.id] = result.skipped
