"""A server whose test run was killed does not outlive the next run's sweep, and the sweep
never signals a live run's server or a program that merely reuses a recorded pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.testing.orphans import record_server, stop_orphaned_servers

# Starts child processes: the mutation run leaves it out.
pytestmark = pytest.mark.child_process

MARKER = "lms-orphan-test-server"
SERVER = [sys.executable, "-c", "import time; time.sleep(300)", MARKER]
# A test run: starts a "server", records it, prints its pid, then waits to be killed.
RUN = (
    "import subprocess, sys, time\n"
    "from pathlib import Path\n"
    "from app.testing.orphans import record_server\n"
    f"server = subprocess.Popen({SERVER!r})\n"
    f"record_server(server.pid, {MARKER!r}, Path(sys.argv[1]))\n"
    "print(server.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def killed_run(registry: Path) -> int:
    """Start a test run, kill it as a CI time-out would; returns its server's pid."""
    run = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", RUN, str(registry)], stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None
    server = int(run.stdout.readline())
    run.send_signal(signal.SIGKILL)
    run.wait(30)
    return server


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="the sweep reads /proc")
def test_the_server_of_a_killed_run_is_stopped_and_its_record_dropped(tmp_path: Path) -> None:
    server = killed_run(tmp_path)
    assert running(server)  # the orphan

    assert stop_orphaned_servers(tmp_path, grace=10) == [server]

    assert not running(server)
    assert list(tmp_path.glob("*.json")) == []


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="the sweep reads /proc")
def test_a_live_runs_server_is_left_alone(tmp_path: Path) -> None:
    ours = subprocess.Popen(SERVER)  # noqa: S603 - our own interpreter
    try:
        record = record_server(ours.pid, MARKER, tmp_path)

        assert stop_orphaned_servers(tmp_path) == []

        assert ours.poll() is None and record.exists()
    finally:
        ours.kill()
        ours.wait(10)


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    """The recorded server is gone and its pid now runs another program (here: this one)."""
    record = tmp_path / "1-2.json"
    dead_owner = killed_owner_pid()
    record.write_text(json.dumps({"owner": dead_owner, "pid": os.getpid(), "marker": MARKER}))

    assert stop_orphaned_servers(tmp_path) == []

    assert not record.exists()  # this process is still here to assert it


def killed_owner_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    return gone.pid
