"""Command line: `letta-matrix-sync sync|plan|status|demo` (also `python -m app`).

Exit codes: 0 every agent in order, 1 some agent failed (see the report), 2 configuration or
setup problem (the message names it), 3 another sync holds the data directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

import anyio

from app.cli_output import Output
from app.config import DEFAULT_DATA_DIR, SyncConfig
from app.demo import run_demo
from app.errors import SyncError, SyncLocked
from app.state import MappingStore
from app.sync.plan import make_plan
from app.sync.service import SyncService
from app.transport import Transport
from app.transport_httpx import HttpxTransport

EXIT_OK, EXIT_FAILURES, EXIT_SETUP, EXIT_LOCKED = 0, 1, 2, 3


ENVIRONMENT = """\
configuration (environment variables):
  required   MATRIX_HOMESERVER_URL, MATRIX_USERNAME, MATRIX_PASSWORD, LETTA_API_URL
  optional   MATRIX_ADMIN_USERNAME, MATRIX_ADMIN_PASSWORD, MATRIX_MCP_USERNAME,
             MATRIX_MCP_PASSWORD, MATRIX_INVITE_USERS, LETTA_TOKEN, MATRIX_DATA_DIR
             (./matrix_data), HISTORY_IMPORT_LIMIT (15), ROOM_NAME_TEMPLATE ({name}),
             LETTA_SPACE_NAME, SYNC_CONCURRENCY (8), HTTP_TIMEOUT (30), LOG_LEVEL (INFO),
             RETRY_BUDGET (30: seconds to wait for a homeserver that stopped answering)

exit codes:
  0 every agent in order   1 an agent failed, or Letta was unreachable
  2 configuration or setup problem (the message names the setting), or a
    homeserver that stopped answering for longer than RETRY_BUDGET
  3 another sync holds the data directory
"""

COMMANDS = {
    "sync": (
        "run one full sync and print the report",
        "Run one full sync: a user, a room and a place in the space for every Letta agent, "
        "then renames, repairs and migration. Prints a report (a progress bar on a terminal).",
    ),
    "plan": (
        "dry run: what a sync would do (writes nothing)",
        "Show what a sync would create, rename, repair or migrate. Reads Letta and, with a "
        "stored admin token, the homeserver; writes nothing anywhere.",
    ),
    "status": (
        "show what the state files record",
        "Show the agents and the space recorded in MATRIX_DATA_DIR, flagging with !! any "
        "agent not in order. Needs no server and no other setting.",
    ),
    "demo": (
        "a whole sync against in-process fakes, no setup",
        "Run a sync, a rename and a re-sync against an in-process fake homeserver and fake "
        "Letta. Needs no server and no configuration.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letta-matrix-sync",
        description="Keep a Matrix homeserver in step with the agents of a Letta server.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (summary, description) in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=ENVIRONMENT if name in ("sync", "plan") else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name != "demo":
            command.add_argument("--json", action="store_true", help="print JSON instead")
    return parser


def _version() -> str:
    try:
        return metadata.version("letta-matrix-sync")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    transport: Transport | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the command line; `env` and `transport` are injectable for tests and embedding."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "status":
            return _status(_data_dir(env), args.json, out)
        if args.command == "demo":
            _setup_logging("WARNING")
            return anyio.run(run_demo, Output(out))
        config = SyncConfig.from_env(env)
        _setup_logging(config.log_level)
        if args.command == "plan":
            return anyio.run(_plan, config, transport, args.json, out)
        return anyio.run(_sync, config, transport, args.json, out)
    except SyncLocked as exc:
        print(f"error: {exc}", file=err)
        return EXIT_LOCKED
    except SyncError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_SETUP


def _data_dir(env: Mapping[str, str] | None) -> Path:
    source = os.environ if env is None else env
    return Path(source.get("MATRIX_DATA_DIR") or DEFAULT_DATA_DIR)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO; keep the noise (and any query string) out.
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def _sync(config: SyncConfig, transport: Transport | None, as_json: bool, out: TextIO) -> int:
    output = Output(out, force_plain=as_json)
    async with SyncService(config, transport) as service:
        with output.progress() as progress:
            report = await service.sync(progress)
    if as_json:
        _dump(report.to_json(), out)
    else:
        output.report(report)
    return EXIT_OK if report.ok else EXIT_FAILURES


async def _plan(config: SyncConfig, transport: Transport | None, as_json: bool, out: TextIO) -> int:
    own = transport is None
    transport = transport or HttpxTransport(timeout=config.http_timeout)
    try:
        plan = await make_plan(config, transport)
    finally:
        if own:
            await transport.aclose()
    code = EXIT_FAILURES if plan.letta_error else EXIT_OK
    if as_json:
        _dump(plan.to_json(), out)
        return code
    output = Output(out)
    output.line(f"space: {plan.space}")
    if not plan.matrix_checked:
        output.line("Matrix not checked: no stored admin token (run a sync first)")
    if plan.letta_error:
        output.line(f"Letta error: {plan.letta_error}")
    rows = [
        (a.action, a.agent_id, a.agent_name, a.detail) for a in plan.actions if a.action != "ok"
    ]
    if rows:
        output.table("Planned changes", ["action", "agent id", "name", "detail"], rows)
    elif not plan.letta_error:
        output.line("nothing to do")
    output.line(f"{plan.count('ok')} agents already in order")
    return code


def _dump(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")


def _status(data_dir: Path, as_json: bool, out: TextIO) -> int:
    store = MappingStore.read(data_dir)
    rows = [
        {
            "agent_id": m.agent_id,
            "agent_name": m.agent_name,
            "matrix_user_id": m.matrix_user_id,
            "room_id": m.room_id,
            "in_order": m.in_order,
            "invitation_status": m.invitation_status,
        }
        for m in store.all()
    ]
    if as_json:
        _dump({"space": store.space.space_id, "agents": rows}, out)
        return EXIT_OK
    out.write(f"data directory: {data_dir.resolve()}\n")
    if not rows and store.space.space_id is None:
        out.write("no state found here: no sync has run with this MATRIX_DATA_DIR\n")
        return EXIT_OK
    out.write(f"space: {store.space.space_id or '-'} ({store.space.name})\n")
    out.write("(ok = user, room and joins in order; !! = to repair on the next sync)\n")
    for row in rows:
        flag = "ok " if row["in_order"] else "!! "
        out.write(f"{flag}{row['agent_id']}  {row['agent_name']}  {row['room_id'] or '-'}\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
