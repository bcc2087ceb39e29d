"""The room's members: configured people invited, the admin and the bot joined (again, when
they had left)."""

from __future__ import annotations

import logging

from app.errors import MatrixForbidden
from app.sync.agent_run import AgentRun, RoomJoinFailed
from app.sync.membership import ensure_joined

log = logging.getLogger(__name__)


async def invite_new_people(run: AgentRun) -> None:
    """Invite configured people this room has never invited (the list may have grown)."""
    room_id = run.mapping.room_id or ""
    room = run.ctx.homeserver.room(room_id)
    for person in run.ctx.policy.invite_users:
        if person in run.mapping.invitation_status or person == run.mapping.matrix_user_id:
            continue
        if room is None or room.membership(person) not in ("join", "invite"):
            try:
                await (await run.client()).invite(room_id, person)
            except MatrixForbidden as exc:
                # Already in an upgraded room, say: the next sync's view tells.
                log.warning("cannot invite %s to %s: %s", person, room_id, exc)
                continue
        run.mapping.invitation_status[person] = "invited"
        await run.save()


def _note_rejoined(run: AgentRun, user_id: str) -> None:
    """A member that had been in the room and was joined again is a repair."""
    was_joined = run.mapping.invitation_status.get(user_id) == "joined"
    repaired = run.ctx.report.repaired
    if was_joined and not run.room_is_new and run.agent.id not in repaired:
        repaired.append(run.agent.id)


async def ensure_members(run: AgentRun) -> None:
    await invite_new_people(run)
    room_id = run.mapping.room_id or ""
    changed = False
    for member, joined in run.ctx.members_to_join():
        user_id = member.user_id or ""
        if room_id in joined and run.mapping.invitation_status.get(user_id) == "joined":
            continue
        status = (
            "joined"
            if room_id in joined
            else await ensure_joined(member, await run.client(), room_id)
        )
        if status == "joined":
            joined.add(room_id)
            _note_rejoined(run, user_id)
        changed = changed or run.mapping.invitation_status.get(user_id) != status
        run.mapping.invitation_status[user_id] = status
    if changed:
        await run.save()
    managed = [member.user_id or "" for member, _ in run.ctx.members_to_join()]
    states = run.mapping.invitation_status
    failed = [user for user in managed if states.get(user) == "failed"]
    if failed:
        raise RoomJoinFailed(f"could not join {', '.join(failed)} to room {room_id}")
