"""The writes an agent's room needs, as `app.sync.decide` lists them, carried out in order by
the account each names: power, renames, the space's links, the tag."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace

from app.matrix.view import RoomState
from app.sync import drift, power, rooms, space
from app.sync.agent_run import AgentRun
from app.sync.decide import DISPLAYNAME, Action, RoomFacts, lowered_core_users
from app.sync.state_writes import StatePowerMissing

log = logging.getLogger(__name__)


def room_facts(run: AgentRun) -> RoomFacts:
    """What the decision of the room's writes takes in (`app.sync.decide`)."""
    room_id = run.mapping.room_id or ""
    view = run.ctx.space
    return RoomFacts(
        mapping=run.mapping,
        agent_name=run.agent.name,
        room=run.room_now(room_id),
        expected_name=run.expected_room_name,
        admin=run.ctx.admin.user_id or "",
        bot=run.ctx.bot.user_id or "",
        space_id=view.space_id,
        listed_in_space=room_id in view.children,
        room_is_new=run.room_is_new,
        space_is_new=view.created or view.found,
    )


async def carry_out(run: AgentRun, actions: list[Action]) -> tuple[str, StatePowerMissing] | None:
    """Each step's writes in turn; a step no account may write stops there, the others
    still run. Returns the first step blocked, with why."""
    first_blocked: tuple[str, StatePowerMissing] | None = None
    for step, grouped in itertools.groupby(actions, key=lambda action: action.step):
        run.step = step
        of_step, done = list(grouped), []
        try:
            for action in of_step:
                account = await _carry_out(run, action)
                done.append(replace(action, account=account).describe())
        except StatePowerMissing as exc:
            first_blocked = first_blocked or (step, exc)
            continue
        finally:
            run.ctx.report.actions.setdefault(run.agent.id, []).extend(done)
        _list_as(run, {action.listed_as for action in of_step})
    return first_blocked


def _list_as(run: AgentRun, lists: set[str]) -> None:
    for name in sorted(lists - {""}):
        listed: list[str] = getattr(run.ctx.report, name)
        listed.append(run.agent.id)


async def _carry_out(run: AgentRun, action: Action) -> str:
    """Make one write; returns the account that made it."""
    if action.blocked:
        raise StatePowerMissing(action.blocked)
    room_id = run.mapping.room_id or ""
    if action.what == DISPLAYNAME:
        await (await run.client()).set_displayname(rooms.clip(run.agent.name))
        run.mapping.agent_name = run.agent.name
        await run.save()
        return run.mapping.matrix_user_id
    if action.what == space.SPACE_CHILD:
        await space.add_child(run.ctx.admin, run.ctx.space, room_id, run.ctx.server_name)
        content = space.child_content(run.ctx.server_name)
        run.note_written(run.ctx.space.space_id, space.SPACE_CHILD, room_id, content)
        return run.ctx.admin.user_id or ""
    if action.what == space.SPACE_PARENT:
        return await _link_parent(run, room_id)
    return await run.write_state(room_id, action.what, _content(run, action))


def _content(run: AgentRun, action: Action) -> dict[str, object]:
    if action.what == drift.ROOM_NAME:
        return {"name": run.expected_room_name}
    if action.what == rooms.AGENT_TAG:
        return {"agent_id": run.agent.id}
    facts = room_facts(run)
    lowered = lowered_core_users(facts)
    log.info("restoring the power of %s in room %s", ", ".join(lowered), run.mapping.room_id)
    return power.restored_levels(facts.room or RoomState(), lowered, action.account)


async def _link_parent(run: AgentRun, room_id: str) -> str:
    view = run.ctx.space
    content = space.parent_content(run.ctx.server_name)
    account = await run.write_state(room_id, space.SPACE_PARENT, content, view.space_id)
    if view.replaced:
        # Empty content removes the link to the space that is gone.
        await run.write_state(room_id, space.SPACE_PARENT, {}, view.replaced)
    return account
