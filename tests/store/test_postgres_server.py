"""The test PostgreSQL of a killed test run does not outlive it by more than the next run:
that run stops it and removes its directory."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.testing.orphans import process_exited
from app.testing.postgres import PostgresServer, stop_orphans

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

STARTER = (
    "from app.testing.postgres import PostgresServer\n"
    "server = PostgresServer.start()\n"
    "print(server.root, flush=True)\n"
    "import time; time.sleep(120)\n"
)


def postmaster_pid(root: Path) -> int:
    return int((root / "data" / "postmaster.pid").read_text().splitlines()[0])


def test_a_killed_runs_server_is_stopped_by_the_next_run(postgres_server: PostgresServer) -> None:
    """(`postgres_server` only for its check that PostgreSQL can run here.)"""
    # A test run, killed while its server is up.
    run = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None
    root = Path(run.stdout.readline().strip())
    postmaster = postmaster_pid(root)
    run.send_signal(signal.SIGKILL)
    run.wait(30)
    assert not process_exited(postmaster)  # an orphan

    stopped = stop_orphans(root.parent)

    assert root in stopped and not root.exists()
    assert process_exited(postmaster)
    assert postgres_server.root.exists()  # a live run's server is left alone
