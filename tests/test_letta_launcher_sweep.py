"""The real-Letta launcher (tests/letta_real) stops what a killed test run left behind: the
Letta server of a work directory whose test process is gone; a live run's is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from letta_real.launch import OWNER, SERVER_PID, stop_orphans

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process


def a_dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_a_dead_runs_letta_server_is_stopped_and_its_directory_removed(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    orphaned, live = tmp_path / "letta-real-dead", tmp_path / "letta-real-live"
    for workdir, owner in ((orphaned, a_dead_pid()), (live, os.getpid())):
        workdir.mkdir()
        (workdir / OWNER).write_text(str(owner))
        (workdir / SERVER_PID).write_text(str(sleeper.pid if workdir is orphaned else 1))

    stopped = stop_orphans(tmp_path, "letta-real-", Path("/nonexistent/bin"))

    assert stopped == [orphaned] and not orphaned.exists() and live.exists()
    assert sleeper.wait(10) != 0  # killed, not finished
