"""Command line: `letta-matrix-sync sync|plan|status|demo|registration` (also `python -m app`).

Exit codes: 0 every agent in order, 1 some agent failed (see the report) or the homeserver failed
(HTTP 5xx) during setup: try again later, 2 configuration or setup problem (the message names
the setting), 3 another sync holds the data directory, 4 the sync could not save its state in
MATRIX_DATA_DIR (a full disk, say; the files there stay whole).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import TextIO, cast

import anyio

from app.cli.commands import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_NOT_SAVED,
    EXIT_OK,
    EXIT_SERVER_TROUBLE,
    EXIT_SETUP,
    run_plan,
    run_sync,
)
from app.cli.doctor import run_doctor
from app.cli.output import Output, ReaderSafeStream, terminal_log_handler
from app.cli.registration import DESCRIPTION as REGISTRATION_DESCRIPTION
from app.cli.registration import add_arguments as add_registration_arguments
from app.cli.registration import run_registration
from app.cli.service import STORE_ACTIONS, add_run_arguments, run_daemon, run_status, run_store
from app.config import DEFAULT_DATA_DIR, SyncConfig
from app.errors import MatrixServerError, StateWriteError, SyncError, SyncLocked
from app.http.calls import Pacing
from app.http.transport import Transport
from app.state.files import OS_FILES, FileOps

# Ctrl-C during a sync: Python 3.11's event loop raises KeyboardInterrupt; anyio's runner on
# 3.10 lets the cancelled main task's CancelledError out instead. Later, a CancelledError out
# here would be a bug, not a Ctrl-C.
_CANCELLED_BY_CTRL_C: type[BaseException] = (
    asyncio.CancelledError if sys.version_info < (3, 11) else KeyboardInterrupt
)

__all__ = [
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_NOT_SAVED",
    "EXIT_OK",
    "EXIT_SERVER_TROUBLE",
    "EXIT_SETUP",
    "build_parser",
    "main",
]


ENVIRONMENT = """\
configuration (environment variables):
  required   MATRIX_HOMESERVER_URL, MATRIX_USERNAME, LETTA_API_URL, and
             MATRIX_PASSWORD in password mode
  appservice MATRIX_APPSERVICE_REGISTRATION (the `registration` command's file) and
             MATRIX_ADMIN_USERNAME (another user than MATRIX_USERNAME, the sender);
             no passwords
  optional   MATRIX_ADMIN_USERNAME, MATRIX_ADMIN_PASSWORD, MATRIX_MCP_USERNAME,
             MATRIX_MCP_PASSWORD, MATRIX_INVITE_USERS, LETTA_TOKEN, MATRIX_DATA_DIR
             (./matrix_data), HISTORY_IMPORT_LIMIT (15), ROOM_NAME_TEMPLATE ({name}),
             LETTA_SPACE_NAME, SYNC_CONCURRENCY (8), HTTP_TIMEOUT (30), LOG_LEVEL (INFO),
             RETRY_BUDGET (30: seconds to wait for a homeserver that stopped answering),
             FAILED_RETRY_MAX (3600: longest wait before an agent held back after a
             failure no retry fixes is tried again; sync --retry-failed tries it now)
             MATRIX_STORE_URL (postgresql://...: the state in PostgreSQL, not files)
  run        SYNC_INTERVAL (60), LISTEN_ADDRESS (127.0.0.1:9464), SYNC_WEBHOOK_TOKEN
             (bearer token of POST /sync; without it only a loopback address accepts it),
             SYNC_BACKEND (asyncio or trio), LEASE_TTL (15: replicas on PostgreSQL)
"""

SYNC_EXIT_CODES = """
exit codes:  (of sync; each command's help gives its own)
  0 every agent in order   1 an agent failed, or Letta was unreachable, or the
    homeserver failed (HTTP 5xx) during setup: nothing to fix, try again later
  2 configuration or setup problem (the message names the setting), or a
    homeserver that stopped answering for longer than RETRY_BUDGET
  3 another sync holds the data directory
  4 the state could not be saved in MATRIX_DATA_DIR (a full disk, say): the
    files there stay whole; fix the cause and run the sync again
  130 interrupted (Ctrl-C); what was done is saved, the next sync goes on from there
"""

# Each command's description gives its own exit codes; sync's are long enough for a table.
_EPILOGS = {"sync": ENVIRONMENT + SYNC_EXIT_CODES, "plan": ENVIRONMENT, "run": ENVIRONMENT}

COMMANDS = {
    "sync": (
        "run one full sync and print the report",
        "Run one full sync: a user, a room and a place in the space for every Letta agent, "
        "then renames, repairs and migration. Prints a report (a progress bar on a terminal).",
    ),
    "plan": (
        "dry run: what a sync would do (writes nothing)",
        "Show what a sync would create, rename, repair or migrate. Reads Letta and, with a "
        "stored admin token, the homeserver's rooms; without one it still asks the homeserver "
        "what needs no token (is it Matrix, are the names free). Writes nothing anywhere. "
        "Exit 0: the plan is made; 1: Letta could not be read, or an agent is blocked (its "
        "name is taken and MATRIX_DATA_DIR has no password for it); 2: configuration problem.",
    ),
    "status": (
        "show what the state files record",
        "Show the agents and the space recorded in MATRIX_DATA_DIR, flagging with !! any "
        "agent not in order. Needs no server and no other setting.",
    ),
    "run": (
        "run as a service: sync on an interval and on POST /sync; health and metrics",
        "Sync every --interval seconds and whenever POST /sync is called (the webhook for a "
        "new agent); serve GET /healthz, /readyz and /metrics (Prometheus) on --listen. "
        "A homeserver or Letta that is down makes it back off and /readyz say why; it never "
        "exits on a setup error (a configuration error exits 2 at start). SIGTERM or SIGINT "
        "lets a sync in flight finish (at most 30 s), "
        "then exits 0.",
    ),
    "store": (
        "copy the state between MATRIX_DATA_DIR and MATRIX_STORE_URL",
        "import: copy the JSON files of MATRIX_DATA_DIR (with the agents' passwords and "
        "tokens) into the PostgreSQL database of MATRIX_STORE_URL. export: write the "
        "database's state back into those files, for a bridge that still reads them. Both "
        "merge (the source wins, nothing is deleted) and can be run again safely.",
    ),
    "demo": (
        "a whole sync against in-process fakes, no setup",
        "Run a sync, a rename and a re-sync against an in-process fake homeserver and fake "
        "Letta. Needs no server and no configuration.",
    ),
    "doctor": (
        "check the configuration against the live servers (writes nothing)",
        "Check the settings, the homeserver, the appservice registration or password-mode "
        "registration, the admin's rights, Letta and its token, the store, and run's listen "
        "address; one line per check, passed or failed with the fix. Never logs in, registers "
        "or writes a file. Exit 0: every check passed; 1: a check failed.",
    ),
    "registration": (
        "write the appservice registration for homeserver.yaml",
        REGISTRATION_DESCRIPTION,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letta-matrix-sync",
        description="Keep a Matrix homeserver in step with the agents of a Letta server.",
        epilog=ENVIRONMENT + SYNC_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    for name, (summary, description) in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=_EPILOGS.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == "registration":
            add_registration_arguments(command)
        elif name == "store":
            command.add_argument("action", choices=STORE_ACTIONS)
        elif name == "run":
            add_run_arguments(command)
        elif name != "demo":
            command.add_argument("--json", action="store_true", help="print JSON instead")
        if name == "sync":
            command.add_argument(
                "--retry-failed",
                action="store_true",
                help="try agents held back after a failure now, whatever their wait",
            )
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
    files: FileOps = OS_FILES,
    pacing: Pacing | None = None,
) -> int:
    """Run the command line; `env`, `transport`, `files` and `pacing` (the clock and sleep
    behind retries) are injectable for tests.

    Output read by a pipe that closes early (`| head`) is cut there, quietly: the exit code
    stays the command's own outcome.
    """
    safe_out, safe_err = ReaderSafeStream(out or sys.stdout), ReaderSafeStream(err or sys.stderr)
    stdout, stderr = cast(TextIO, safe_out), cast(TextIO, safe_err)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help(stdout)
            code = EXIT_OK
        else:
            code = _run(args.command, args, env, transport, stdout, stderr, files, pacing)
    except (KeyboardInterrupt, _CANCELLED_BY_CTRL_C):
        print("interrupted: what was done is saved; the next sync goes on from there", file=stderr)
        code = EXIT_INTERRUPTED
    for stream, given, real in ((safe_out, out, sys.stdout), (safe_err, err, sys.stderr)):
        if stream.reader_gone and given is None:
            _discard(real)
    return code


def _run(
    command: str,
    args: argparse.Namespace,
    env: Mapping[str, str] | None,
    transport: Transport | None,
    out: TextIO,
    err: TextIO,
    files: FileOps,
    pacing: Pacing | None,
) -> int:
    try:
        if command == "status":
            return anyio.run(run_status, env, args.json, out)
        if command == "store":
            return anyio.run(run_store, args.action, env, out)
        if command == "demo":
            _setup_logging("WARNING")
            # The demo runs on the test kit: shipped modules never import it at start.
            from app.testing.demo import run_demo

            return anyio.run(run_demo, Output(out))
        if command == "registration":
            return run_registration(args, os.environ if env is None else env, out, err)
        if command == "doctor":
            doctor_env = os.environ if env is None else env
            return anyio.run(run_doctor, doctor_env, transport, out, args.json, pacing)
        config = SyncConfig.from_env(env)
        # Only sync draws a progress bar; run's logs go to journald or a container's log.
        _setup_logging(config.log_level, terminal=command == "sync")
        if command == "plan":
            return anyio.run(run_plan, config, transport, args.json, out, pacing)
        if command == "run":
            return run_daemon(config, args, env, transport, pacing)
        config = replace(config, retry_failed=args.retry_failed)
        return anyio.run(run_sync, config, transport, args.json, out, files, pacing)
    except SyncLocked as exc:
        print(f"error: {exc}", file=err)
        return EXIT_LOCKED
    except StateWriteError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_NOT_SAVED
    except MatrixServerError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_SERVER_TROUBLE
    except SyncError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_SETUP


def _discard(stream: TextIO) -> None:
    """The stream's reader is gone: send what Python still flushes at exit to /dev/null
    instead of a "BrokenPipeError" message and exit code 120."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def _data_dir(env: Mapping[str, str] | None) -> Path:
    source = os.environ if env is None else env
    return Path(source.get("MATRIX_DATA_DIR") or DEFAULT_DATA_DIR)


def _setup_logging(level: str, *, terminal: bool = False) -> None:
    handler = terminal_log_handler(sys.stderr) if terminal else None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler])
    # httpx logs every request URL at INFO; keep the noise (and any query string) out.
    logging.getLogger("httpx").setLevel(logging.WARNING)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
