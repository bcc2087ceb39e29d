"""One agent's sync, in order: user, room, the room's writes, members, history.

Each step checks what is already true before acting (the steady state makes no request for
an agent), tolerates "already done", and saves the mapping as soon as something changed.
"""

from __future__ import annotations

from app.sync import rooms
from app.sync.agent_run import AgentRun
from app.sync.decide import room_actions
from app.sync.history import import_history, posted_keys
from app.sync.member_steps import ensure_members
from app.sync.room_steps import ensure_room
from app.sync.room_writes import carry_out, room_facts


async def sync_agent(run: AgentRun) -> None:
    if run.unsaved:
        # Saved (and fsynced) before registering: a crash or power cut in between never
        # strands an account whose password nobody knows.
        await run.ctx.store.save_mapping(run.mapping, fsync=True)
        run.unsaved = False
    run.step = "user"
    await ensure_user(run)
    # The room comes before the rename: renaming a room that is gone would fail forever.
    run.step = "room"
    await ensure_room(run)
    # A write no account has the power for fails the agent, but only once the other
    # steps ran: the members still join, the history still lands.
    blocked = await carry_out(run, room_actions(room_facts(run)))
    run.step = "members"
    await ensure_members(run)
    if run.mapping.history_pending:
        run.step = "history"
        await import_agent_history(run)
    if blocked is not None:
        run.step, error = blocked
        raise error


async def ensure_user(run: AgentRun) -> None:
    if run.mapping.created:
        return
    m = run.mapping
    client = run.ctx.identity.stored(m.matrix_user_id, m.matrix_password)
    if client is None:
        client, run.user_is_new = await run.ctx.identity.register_agent(
            m.matrix_user_id, m.matrix_password
        )
    run.use_client(client)
    await client.set_displayname(rooms.clip(run.agent.name))
    m.created = True
    await run.save()
    if run.user_is_new:
        run.ctx.report.users_created.append(run.agent.id)


async def import_agent_history(run: AgentRun) -> None:
    limit = run.ctx.policy.history_import_limit
    room_id = run.mapping.room_id or ""
    client = await run.client()
    done = run.mapping.history_done = run.mapping.history_done or []
    already = set(done)
    if not run.room_is_new:
        # Resuming: a post may have landed without being recorded (a kill, a lost reply).
        already |= await posted_keys(client, room_id)

    async def record(key: str) -> None:
        done.append(key)
        await run.save()

    result = await import_history(
        run.ctx.letta, client, run.agent.id, room_id, limit, done=already, on_sent=record
    )
    run.mapping.history_pending, run.mapping.history_done = False, None
    await run.save()
    if result.posted:
        run.ctx.report.history_imported[run.agent.id] = result.posted
    if result.skipped:
        run.ctx.report.history_skipped[run.agent.id] = result.skipped
