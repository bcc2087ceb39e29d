"""Two sync processes started together on one data directory: one runs, one stands aside.

Every homeserver request is parked at a gate until the test opens it, so the first process is
certainly mid-sync (holding the data-directory lock) while the second one starts.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from reliability_support import assert_converged, mappings_on_disk, tagged_rooms
from served_fakes import ADMIN, BOT, WAIT, Served, SyncProcess, sync_env, wait_for

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

AGENTS = 6
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def test_second_sync_on_the_same_data_dir_exits_3_and_nothing_is_doubled(tmp_path: Path) -> None:
    served = Served(gate=threading.Event())
    agent_ids = [served.letta.add_agent(f"Twin {n}") for n in range(AGENTS)]
    data_dir = tmp_path / "data"
    members = (f"@{ADMIN}:localhost", f"@{BOT}:localhost")

    with served.running() as (matrix_url, letta_url):
        env = sync_env(matrix_url, letta_url, data_dir)
        first = SyncProcess.start(env, tmp_path, "first")
        second = SyncProcess.start(env, tmp_path, "second")
        assert served.first_request.wait(WAIT), first.stderr + second.stderr
        # One process holds the lock and is parked at the gate; the other must give up.
        gave_up = wait_for(lambda: first.proc.poll() is not None or second.proc.poll() is not None)
        assert served.gate is not None
        served.gate.set()
        assert gave_up, "both processes got past the lock"
        loser, winner = (first, second) if first.proc.poll() is not None else (second, first)
        assert winner.wait() == 0, winner.stderr[-3000:]
        assert loser.wait() == 3, loser.stderr[-3000:]

        assert_converged(served.homeserver, data_dir, agent_ids, members=members)
        rooms = tagged_rooms(served.homeserver)
        # The one that stood aside now runs alone: nothing left to create.
        again = SyncProcess.start(env, tmp_path, "again", "--json")
        assert again.wait() == 0, again.stderr[-3000:]

    report = json.loads(again.stdout)
    assert report["rooms_created"] == [] and report["users_created"] == []
    assert tagged_rooms(served.homeserver) == rooms
    assert set(mappings_on_disk(data_dir)) == set(agent_ids)

    message = [line for line in loser.stderr.splitlines() if not LOG_LINE.match(line)]
    assert len(message) == 1, loser.stderr
    assert message[0].startswith("error: another sync (pid ")
    assert f"(pid {winner.pid})" in message[0] or "(pid unknown)" in message[0]
    assert str(data_dir) in message[0]
    assert "Traceback" not in loser.stderr and loser.stdout == ""
