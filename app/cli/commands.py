"""The bodies of `sync`, `plan` and `status`: run the library, then print what it found.

Each returns the command's exit code (see `app.cli`); none of them decides how errors look.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from app.cli.output import Output
from app.config import SyncConfig
from app.http.calls import Pacing
from app.http.httpx_transport import HttpxTransport
from app.http.paths import redact_url
from app.http.transport import Transport
from app.state import AgentMapping, Store
from app.state.files import FileOps
from app.sync.plan import make_plan
from app.sync.plan_types import SyncPlan
from app.sync.service import SyncService

EXIT_OK, EXIT_FAILURES, EXIT_SETUP, EXIT_LOCKED, EXIT_NOT_SAVED = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # the shell's own code for a command stopped by Ctrl-C (128 + SIGINT)
# The homeserver failed (HTTP 5xx) during setup: like a failed agent, retrying later helps.
EXIT_SERVER_TROUBLE = EXIT_FAILURES


async def run_sync(
    config: SyncConfig,
    transport: Transport | None,
    as_json: bool,
    out: TextIO,
    files: FileOps,
    pacing: Pacing | None = None,
) -> int:
    output = Output(out, force_plain=as_json)
    async with SyncService(config, transport, files=files, pacing=pacing) as service:
        with output.progress() as progress:
            report = await service.sync(progress)
    if as_json:
        dump({**where_state_is(config), **report.to_json()}, out)
    else:
        output.line(state_line(config))
        output.report(report)
    return EXIT_OK if report.ok else EXIT_FAILURES


async def run_plan(
    config: SyncConfig,
    transport: Transport | None,
    as_json: bool,
    out: TextIO,
    pacing: Pacing | None = None,
) -> int:
    own = transport is None
    transport = transport or HttpxTransport(timeout=config.http_timeout)
    try:
        plan = await make_plan(config, transport, (pacing or Pacing()).wall)
    finally:
        if own:
            await transport.aclose()
    # 1: the sync would not get everything in order (Letta unreadable, or an agent blocked).
    code = EXIT_FAILURES if plan.letta_error or plan.count("blocked") else EXIT_OK
    if as_json:
        dump({**where_state_is(config), **plan.to_json()}, out)
    else:
        show_plan(plan, state_line(config), Output(out))
    return code


def where_state_is(config: SyncConfig) -> dict[str, str | None]:
    """For --json: the data directory, or (on PostgreSQL) the database, its password hidden."""
    if config.store_url:
        return {"data_dir": None, "store": redact_url(config.store_url)}
    data_dir = str(config.data_dir.resolve())
    return {"data_dir": data_dir, "store": data_dir}


def state_line(config: SyncConfig) -> str:
    if config.store_url:
        return f"store: MATRIX_STORE_URL={redact_url(config.store_url)}"
    return f"data directory: {config.data_dir.resolve()}"


def show_plan(plan: SyncPlan, where: str, output: Output) -> None:
    output.line(where)
    output.line(f"space: {plan.space}")
    if not plan.matrix_checked:
        output.line("rooms not checked: no stored admin token (run a sync first)")
    for note in plan.notes:
        output.line(note)
    if plan.letta_error:
        output.line(f"Letta error: {plan.letta_error}")
    rows = [
        (a.action, a.agent_id, a.agent_name, a.detail, "; ".join(a.actions))
        for a in plan.actions
        if a.action != "ok"
    ]
    if rows:
        columns = ["action", "agent id", "name", "detail", "writes (step: what as account)"]
        output.table("Planned changes", columns, rows)
    elif not plan.letta_error:
        output.line("nothing to do")
    if plan.removed_from_letta:
        output.line(
            f"removed from Letta (their users and rooms are kept): "
            f"{', '.join(plan.removed_from_letta)}"
        )
    if not plan.letta_error:  # with Letta unread, no agent is known to be in order
        output.line(f"{plan.count('ok')} agents already in order")


def dump(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")


def show_status(data_dir: Path | None, as_json: bool, out: TextIO, store: Store) -> int:
    """What `store` records; `data_dir` when it is the JSON files of that directory."""
    where = {"data_dir": str(data_dir.resolve())} if data_dir else {"store": store.location}
    mappings = store.all()
    if as_json:
        rows = [_status_json(m) for m in mappings]
        dump({**where, "space": store.space.space_id, "agents": rows}, out)
        return EXIT_OK
    heading = f"data directory: {where['data_dir']}" if data_dir else where["store"]
    out.write(f"{heading}\n")
    if not mappings and store.space.space_id is None:
        setting = "MATRIX_DATA_DIR" if "data_dir" in where else "MATRIX_STORE_URL"
        out.write(f"no state found here: no sync has run with this {setting}\n")
        return EXIT_OK
    out.write(f"space: {store.space.space_id or '-'} ({store.space.name})\n")
    out.write(
        "(ok = user, room and joins in order; !! = to repair on the next sync;"
        " gone = removed from Letta, kept here)\n"
    )
    table = [("", "agent id", "name", "room")] + [
        (_flag(m), m.agent_id, m.agent_name, m.room_id or "-") for m in mappings
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for flag, agent_id, name, room in table:
        cells = (flag.ljust(widths[0]), agent_id.ljust(widths[1]), name.ljust(widths[2]), room)
        out.write("  ".join(cells).rstrip() + "\n")
    return EXIT_OK


def _flag(mapping: AgentMapping) -> str:
    if mapping.removed_from_letta:
        return "gone"
    return "ok" if mapping.in_order else "!!"


def _status_json(m: AgentMapping) -> dict[str, object]:
    return {
        "agent_id": m.agent_id,
        "agent_name": m.agent_name,
        "matrix_user_id": m.matrix_user_id,
        "room_id": m.room_id,
        "in_order": m.in_order,
        "removed_from_letta": m.removed_from_letta,
        "invitation_status": m.invitation_status,
    }
