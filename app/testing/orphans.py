"""Servers a test run started, written down so that the next run stops what a killed run left.

A test run that is killed (a CI time-out, a mutant's time limit, Ctrl-C twice) never reaches
its fixtures' teardown, and its servers go on running. Each server this kit starts as a
child process is recorded in a small file (owner pid, server pid, a string its command line
holds); the next server start sweeps the records whose owner is gone.

Sweeping reads ``/proc/<pid>/cmdline`` so that a pid reused by another program is never
signalled: where there is no ``/proc`` (macOS), the sweep only drops the records.
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
    """Record a server this process started; `marker` must appear in its command line."""
    root = registry or default_registry()
    root.mkdir(parents=True, exist_ok=True)
    record = root / f"{os.getpid()}-{pid}.json"
    record.write_text(json.dumps({"owner": os.getpid(), "pid": pid, "marker": marker}))
    return record


def forget_server(record: Path) -> None:
    record.unlink(missing_ok=True)


def stop_orphaned_servers(registry: Path | None = None, grace: float = 10.0) -> list[int]:
    """Stop the recorded servers whose owner is gone; returns the pids signalled."""
    stopped = []
    for record in sorted((registry or default_registry()).glob("*.json")):
        try:
            entry = json.loads(record.read_text())
            owner, pid, marker = int(entry["owner"]), int(entry["pid"]), str(entry["marker"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours to judge
        if process_alive(owner):
            continue
        if _runs(pid, marker):
            _stop(pid, grace)
            stopped.append(pid)
        forget_server(record)
    return stopped


def default_registry() -> Path:
    return Path(tempfile.gettempdir()) / REGISTRY


def _runs(pid: int, marker: str) -> bool:
    """Alive and still the program recorded (not a reused pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return marker in command.decode(errors="replace") and not _gone(pid)


def _gone(pid: int) -> bool:
    """Exited: no process, or a zombie (an init that does not reap, as in some containers)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _stop(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _gone(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
