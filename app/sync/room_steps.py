"""The agent's room: kept while it lives, brought back in order when it drifted (the agent
out of it, the room upgraded), replaced only when nothing else can be done."""

from __future__ import annotations

import contextlib
import logging

from app.errors import MatrixError, MatrixForbidden
from app.matrix import MatrixClient
from app.sync import drift, rooms, space
from app.sync.agent_run import AgentDeactivated, AgentRun, RoomJoinFailed
from app.sync.decide import room_fate
from app.sync.membership import invite_back

log = logging.getLogger(__name__)


async def ensure_room(run: AgentRun) -> bool:
    """Make sure the agent has a live room; True when a new room was created."""
    room_id = run.mapping.room_id
    if room_id and run.mapping.room_created:
        if await _keep_room(run, room_id):
            return False
        await _drop_dead_room(run, room_id)
    dead = {room_id} if room_id else set()
    if not run.user_is_new:
        found = await rooms.find_tagged_room(await run.client(), run.agent.id, dead)
        if found:
            # A room whose creation was never recorded (a crash, a lost reply) never got
            # its history either: import it now, skipping whatever the room already has.
            await _record_room(run, found, history_pending=True)
            return False
    room_id = await _create_room(run)
    run.room_is_new = True
    await _record_room(run, room_id, history_pending=True)
    run.ctx.report.rooms_created.append(run.agent.id)
    return True


async def _keep_room(run: AgentRun, room_id: str) -> bool:
    """Whether the recorded room stays the agent's room, brought back in order if need be."""
    room = run.ctx.homeserver.room(room_id)
    if room is None:
        # The admin is not in it (the members step brings it back): only the agent can tell.
        return await rooms.agent_is_in_room(await run.client(), room_id)
    fate = room_fate(room, run.mapping, run.ctx.admin.user_id or "")
    if fate == "follow":
        await _follow_upgrade(run, room_id, drift.replacement_of(room) or "")
        return True
    if fate == "keep":
        return True
    await _refuse_if_deactivated(run, room_id)
    membership = room.membership(run.mapping.matrix_user_id)
    if fate == "replace":
        log.warning("the admin may not let %s back into %s", run.mapping.matrix_user_id, room_id)
        return False
    return await _rejoin_agent(run, room_id, membership)


async def _refuse_if_deactivated(run: AgentRun, room_id: str) -> None:
    """A deactivated agent keeps its room and its place in the space: no new room for an
    account that can never use it, and nothing lost should it be reactivated."""
    user = run.mapping.matrix_user_id
    if await run.ctx.admin.account_deactivated(user):
        raise AgentDeactivated(
            f"the account {user} has been deactivated on the homeserver: this agent "
            f"cannot be synced (its room {room_id} is kept)"
        )


async def _rejoin_agent(run: AgentRun, room_id: str, membership: str | None) -> bool:
    """Invite the agent back (lifting a ban where the admin may); False when the admin
    cannot, and the room must be replaced."""
    user = run.mapping.matrix_user_id
    try:
        await invite_back(run.ctx.admin, room_id, user, banned=membership == "ban")
    except MatrixForbidden as exc:
        log.warning("cannot bring %s back into %s: %s", user, room_id, exc)
        return False
    # The agent's own errors (a refused login, say) are its failure: the room stays.
    await (await run.client()).join(room_id)
    run.agent_rejoined = True
    run.ctx.report.repaired.append(run.agent.id)
    return True


async def _follow_upgrade(run: AgentRun, old_room: str, new_room: str) -> None:
    """An upgraded room lives on in its replacement: the agent moves there. Its power
    is not copied over (the upgrader is the new room's creator), so the admin does the
    writes; whoever the upgrader invited lets the other in."""
    admin = run.ctx.admin
    agent_in = False
    try:
        await admin.join(new_room)
    except MatrixForbidden:
        agent = await _join_agent(run, new_room, old_room)
        agent_in = True
        await agent.invite(new_room, admin.user_id or "")
        await admin.join(new_room)
    run.ctx.admin_rooms.add(new_room)
    await _refuse_if_not_continued(run, old_room, new_room)
    if not agent_in:
        await _join_agent(run, new_room, old_room)
    try:
        await admin.put_state_event(new_room, rooms.AGENT_TAG, {"agent_id": run.agent.id})
    except MatrixForbidden as exc:  # the upgrader kept all power: the mapping records it
        log.info("cannot tag %s: %s", new_room, exc)
    if old_room in run.ctx.space.children:
        await space.remove_child(admin, run.ctx.space, old_room)
    await _untag(run, old_room)
    run.mapping.room_id, run.mapping.invitation_status = new_room, {}
    await run.save()
    run.ctx.report.repaired.append(run.agent.id)


async def _refuse_if_not_continued(run: AgentRun, old_room: str, new_room: str) -> None:
    """Anyone with power in the room can send a tombstone: only a room whose creation
    names the old one as its predecessor is followed (once refused, never again)."""
    admin = run.ctx.admin
    create = await admin.get_state_event(new_room, "m.room.create") or {}
    predecessor = create.get("predecessor")
    if isinstance(predecessor, dict) and predecessor.get("room_id") == old_room:
        return
    run.mapping.ignored_upgrade = new_room
    await run.save()
    with contextlib.suppress(MatrixError):
        await admin.leave(new_room)
    run.ctx.admin_rooms.discard(new_room)
    raise RoomJoinFailed(
        f"room {old_room} names {new_room} as its replacement, but that room does not "
        "continue it: the tombstone is ignored and the room kept"
    )


async def _join_agent(run: AgentRun, room_id: str, old_room: str) -> MatrixClient:
    agent = await run.client()
    try:
        await agent.join(room_id)
        return agent
    except MatrixForbidden:
        if room_id not in run.ctx.admin_rooms:
            raise RoomJoinFailed(
                f"room {old_room} was upgraded to {room_id}, where neither the admin nor "
                "the agent user is invited: invite one of them there"
            ) from None
    await run.ctx.admin.invite(room_id, run.mapping.matrix_user_id)
    await agent.join(room_id)
    return agent


async def _drop_dead_room(run: AgentRun, room_id: str) -> None:
    log.warning("room %s of agent %s is gone or abandoned; replacing it", room_id, run.agent.id)
    if room_id in run.ctx.space.children:
        await space.remove_child(run.ctx.admin, run.ctx.space, room_id)
    await _untag(run, room_id)
    run.mapping.room_id, run.mapping.room_created = None, False
    run.mapping.invitation_status = {}
    await run.save()
    run.ctx.report.repaired.append(run.agent.id)


async def _untag(run: AgentRun, room_id: str) -> None:
    """Empty the old room's tag, so that no later search ever adopts it again: the admin
    or the bot, whichever is still in it and may."""
    room = run.ctx.homeserver.room(room_id)
    if room is None:
        return
    for member in {
        run.ctx.admin.user_id: run.ctx.admin,
        run.ctx.bot.user_id: run.ctx.bot,
    }.values():
        if room.membership(member.user_id or "") != "join":
            continue
        try:
            await member.put_state_event(room_id, rooms.AGENT_TAG, {})
            return
        except MatrixError as exc:
            log.info("%s cannot untag %s: %s", member.user_id, room_id, exc)


async def _record_room(run: AgentRun, room_id: str, *, history_pending: bool = False) -> None:
    run.mapping.room_id, run.mapping.room_created = room_id, True
    # Recorded with the room, so a failed import is retried by the next sync.
    if history_pending and run.ctx.policy.history_import_limit > 0:
        run.mapping.history_pending = True
    for user in run.ctx.invitees(run.mapping.matrix_user_id):
        run.mapping.invitation_status.setdefault(user, "invited")
    await run.save()


async def _create_room(run: AgentRun) -> str:
    options = rooms.room_create_options(
        agent_id=run.agent.id,
        name=run.expected_room_name,
        invite=run.ctx.invitees(run.mapping.matrix_user_id),
        space_id=run.ctx.space.space_id,
        server_name=run.ctx.server_name,
    )
    return await (await run.client()).create_room(**options)
