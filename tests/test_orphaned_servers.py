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

from app.testing.orphans import process_exited, record_server, stop_orphaned_servers

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
    assert not process_exited(server)  # the orphan

    assert stop_orphaned_servers(tmp_path, grace=10) == [server]

    assert process_exited(server)
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


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="the sweep reads /proc")
def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    """The recorded server is gone and its pid now runs another program."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        record = tmp_path / f"1-{other.pid}.json"
        record.write_text(
            json.dumps({"owner": killed_owner_pid(), "pid": other.pid, "marker": MARKER})
        )

        assert stop_orphaned_servers(tmp_path) == []

        assert other.poll() is None and not record.exists()
    finally:
        other.kill()
        other.wait(10)


def test_a_registry_another_user_could_write_into_is_not_read(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    (shared / "1-2.json").write_text(json.dumps({"owner": 1, "pid": 2, "marker": ""}))

    assert stop_orphaned_servers(shared) == []
    assert (shared / "1-2.json").exists()  # not ours to judge


def test_a_record_needs_a_marker(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a marker"):
        record_server(os.getpid(), "", tmp_path)


def killed_owner_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    return gone.pid
