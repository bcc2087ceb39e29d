"""Every listed agent's sync, concurrently: one agent's failure never stops the others."""

from __future__ import annotations

import logging

import anyio

from app.errors import StateFileError
from app.letta import Agent, AgentList
from app.sync.agent import sync_agent
from app.sync.agent_run import AgentRun
from app.sync.backoff import Hold, after_run, held, levels_now
from app.sync.context import SyncContext
from app.sync.progress import SyncProgress
from app.sync.report import describe
from app.sync.throttle import AdaptiveLimiter, worth_another_try

log = logging.getLogger(__name__)


async def sync_agents(ctx: SyncContext, listing: AgentList, progress: SyncProgress) -> None:
    """Sync every agent of `listing`; a state file that cannot be written stops them all."""
    ctx.report.agents_seen = len(listing.agents)
    ctx.report.removed_from_letta = listing.missing(ctx.store.mappings)
    await _mark_removed(ctx, listing)
    limiter = AdaptiveLimiter.for_server(ctx.policy.sync_concurrency, ctx.admin.http)
    not_saved: list[StateFileError] = []

    async def one(agent: Agent) -> None:
        async with limiter.slot():
            try:
                ok = await _sync_one(ctx, agent)
            except StateFileError as exc:
                not_saved.append(exc)
                group.cancel_scope.cancel()
                return
        progress.agent_done(agent.id, agent.name, ok)

    async with anyio.create_task_group() as group:
        for agent in listing.agents:
            group.start_soon(one, agent)
    if not_saved:
        raise not_saved[0]


async def _mark_removed(ctx: SyncContext, listing: AgentList) -> None:
    """Flag mappings whose agent Letta no longer lists, and unflag returning ones; an
    incomplete listing only unflags (what it lacks may still exist)."""
    removed = set(ctx.report.removed_from_letta)
    for mapping in ctx.store.all():
        gone = mapping.agent_id in removed
        if not gone and listing.incomplete is not None and not listing.listed(mapping.agent_id):
            continue
        if mapping.mark_removed_from_letta(gone):
            await ctx.store.save_mapping(mapping)


async def _sync_one(ctx: SyncContext, agent: Agent) -> bool:
    """One agent's whole sync; its failure goes into the report and never stops the others.

    A connection lost mid-step (a homeserver restart) gets one more try: every step checks
    what is already true first, so nothing is done twice. A state file that cannot be written
    is not the agent's failure: it stops the sync.
    """
    mapping = ctx.store.get(agent.id)
    levels = levels_now(ctx.homeserver, mapping)
    if ctx.policy.retry_failed and mapping is not None:
        mapping.refused_state = None  # every account may try the writes again
    hold = None if ctx.policy.retry_failed else held(mapping, agent.name, ctx.now(), levels)
    if hold is not None:
        ctx.report.held(agent.id, agent.name, hold.step, hold.reason, hold.next_try)
        return False
    where, error = await _run_agent(ctx, agent)
    if error is not None and worth_another_try(error, ctx.admin.http):
        log.info("agent %s: %s at %s; trying once more", agent.id, describe(error), where)
        where, error = await _run_agent(ctx, agent)
    hold = await _record_outcome(ctx, agent, None if error is None else (where, error), levels)
    if error is None:
        return True
    log.info("agent %s failed at %s: %s", agent.id, where, describe(error))
    if hold is not None and hold.next_try_at > ctx.now():
        ctx.report.held(agent.id, agent.name, where, describe(error), hold.next_try)
    else:
        ctx.report.fail(agent.id, agent.name, where, error)
    return False


async def _record_outcome(
    ctx: SyncContext, agent: Agent, failure: tuple[str, Exception] | None, levels: str | None
) -> Hold | None:
    """Hold an agent back after a failure retrying cannot fix; let it go after a success."""
    mapping = ctx.store.get(agent.id)
    if mapping is None:
        return None
    before = mapping.held
    longest = ctx.policy.failed_retry_max
    hold = after_run(mapping, agent.name, failure, ctx.now(), longest, levels)
    if mapping.held != before:
        await ctx.store.save_mapping(mapping)
    return hold


async def _run_agent(ctx: SyncContext, agent: Agent) -> tuple[str, Exception | None]:
    """(the step reached, the error that stopped it or None)."""
    run: AgentRun | None = None
    try:
        run = AgentRun(ctx, agent)
        await sync_agent(run)
    except StateFileError:
        raise
    except Exception as exc:
        return (run.step if run is not None else "mapping"), exc
    return run.step, None
