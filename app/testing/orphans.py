"""Servers a test run started, written down so that the next run stops what a killed run left.

A test run that is killed (a CI time-out, a mutant's time limit, Ctrl-C twice) never reaches
its fixtures' teardown, and its servers go on running. Each server this kit starts as a
child process is recorded in a small file (owner pid, server pid, one argument of its
command line); the next server start sweeps the records whose owner is gone.

The records live in a directory of the user's own (mode 0700, one per uid), so no other
user can plant one. Sweeping reads ``/proc/<pid>/cmdline`` and wants the recorded argument
whole, so that a pid reused by another program is never signalled: where there is no
``/proc`` (macOS), the sweep only drops the records.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path

REGISTRY = "lms-test-servers"


def process_alive(pid: int) -> bool:
    """Whether a process of that pid runs (or may: another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def record_server(pid: int, marker: str, registry: Path | None = None) -> Path:
    """Record a server this process started; `marker` is one whole argument of its command
    line (a path that names this server alone)."""
    if not marker:
        raise ValueError("a server's record needs a marker: an argument only it is given")
    root = registry or default_registry()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = root / f"{os.getpid()}-{pid}.json"
    record.write_text(json.dumps({"owner": os.getpid(), "pid": pid, "marker": marker}))
    return record


def forget_server(record: Path) -> None:
    record.unlink(missing_ok=True)


def stop_orphaned_servers(registry: Path | None = None, grace: float = 10.0) -> list[int]:
    """Stop the recorded servers whose owner is gone; returns the pids signalled."""
    stopped: list[int] = []
    root = registry or default_registry()
    if not _ours(root):
        return stopped
    for record in sorted(root.glob("*.json")):
        try:
            entry = json.loads(record.read_text())
            owner, pid, marker = int(entry["owner"]), int(entry["pid"]), str(entry["marker"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours to judge
        if process_alive(owner):
            continue
        if marker and _runs(pid, marker):
            _stop(pid, grace)
            stopped.append(pid)
        forget_server(record)
    return stopped


def default_registry() -> Path:
    return Path(tempfile.gettempdir()) / f"{REGISTRY}-{os.getuid()}"


def _ours(root: Path) -> bool:
    """The registry is this user's and no one else may write into it."""
    try:
        found = root.stat()
    except OSError:
        return False
    return found.st_uid == os.getuid() and not found.st_mode & 0o022


def _runs(pid: int, marker: str) -> bool:
    """Alive and still the program recorded (not a reused pid)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return marker.encode() in arguments and not process_exited(pid)


def process_exited(pid: int) -> bool:
    """Exited: no process, or a zombie (an init that does not reap, as in some containers)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _stop(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process_exited(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
