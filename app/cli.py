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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letta-matrix-sync",
        description="Keep a Matrix homeserver in step with the agents of a Letta server.",
        epilog="Configuration comes from environment variables; see README.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="run one full sync and print the report")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    plan = commands.add_parser(
        "plan", help="dry run: what a sync would create, rename, repair or migrate (no writes)"
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    status = commands.add_parser("status", help="show the mappings and space from the state files")
    status.add_argument("--json", action="store_true", help="print as JSON")
    commands.add_parser(
        "demo", help="a full sync against an in-process fake homeserver and Letta (no setup)"
    )
    return parser


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
        output.line(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURES


async def _plan(config: SyncConfig, transport: Transport | None, as_json: bool, out: TextIO) -> int:
    own = transport is None
    transport = transport or HttpxTransport(timeout=config.http_timeout)
    try:
        plan = await make_plan(config, transport)
    finally:
        if own:
            await transport.aclose()
    if as_json:
        _dump(plan.to_json(), out)
        return EXIT_OK
    output = Output(out)
    output.line(f"space: {plan.space}")
    if not plan.matrix_checked:
        output.line("Matrix not checked: no stored admin token (run a sync first)")
    if plan.letta_error:
        output.line(f"Letta error: {plan.letta_error}")
    rows = [
        (a.action, a.agent_id, a.agent_name, a.detail) for a in plan.actions if a.action != "ok"
    ]
    output.table("Planned changes", ["action", "agent id", "name", "detail"], rows)
    output.line(f"{plan.count('ok')} agents already in order")
    return EXIT_OK


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
    out.write(f"space: {store.space.space_id or '-'} ({store.space.name})\n")
    for row in rows:
        flag = "ok " if row["in_order"] else "!! "
        out.write(f"{flag}{row['agent_id']}  {row['agent_name']}  {row['room_id'] or '-'}\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
