"""A real sync process killed with SIGKILL mid-run, then run again, converges.

The fake homeserver and fake Letta are served over HTTP on 127.0.0.1. A trap fires on the k-th
successful createRoom or register and, in "held" mode, holds that reply back: the server has
acted but the client has not heard, the worst moment to die. The test kills the process as soon
as the trap fires, reruns the sync to completion and checks what the homeserver holds.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from reliability_support import (
    add_conversation,
    assert_converged,
    mappings_on_disk,
    read_json_file,
    space_on_disk,
    spaces,
    tagged_rooms,
    tokens_on_disk,
)
from served_fakes import (
    ADMIN,
    ADMIN_PASSWORD,
    BOT,
    BOT_PASSWORD,
    Served,
    SyncProcess,
    Trap,
    sync_env,
    wait_for,
)

from app.state.store import MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

AGENTS = 12

TRAPS = [
    pytest.param(("POST", "/createRoom", 1, True), id="createRoom-1-held(space)"),
    pytest.param(("POST", "/createRoom", 5, True), id="createRoom-5-held"),
    pytest.param(("POST", "/createRoom", 9, True), id="createRoom-9-held"),
    pytest.param(("POST", "/createRoom", 6, False), id="createRoom-6-replied"),
    pytest.param(("POST", "/register", 3, True), id="register-3-held(first agent)"),
]


@pytest.mark.parametrize("trap", TRAPS)
def test_sync_killed_mid_run_converges_on_rerun(
    tmp_path: Path, trap: tuple[str, str, int, bool]
) -> None:
    served = Served(trap=Trap(*trap))
    agent_ids = [served.letta.add_agent(f"Agent {n:02d}") for n in range(AGENTS)]
    history = {a: add_conversation(served.letta, a, a) for a in agent_ids}
    data_dir = tmp_path / "data"
    assert served.trap is not None

    with served.running() as (matrix_url, letta_url):
        env = sync_env(
            matrix_url, letta_url, data_dir, LOG_LEVEL="DEBUG", HISTORY_IMPORT_LIMIT="15"
        )
        victim = SyncProcess.start(env, tmp_path, "killed")
        fired = wait_for(served.trap.fired.is_set, victim)
        assert fired, f"trap never fired; exit {victim.proc.poll()}:\n{victim.stderr[-2000:]}"
        assert victim.kill() == -signal.SIGKILL
        served.trap.release.set()
        json_files_valid(data_dir)
        in_flight = (
            read_json_file(data_dir / SPACE_FILE) if (data_dir / SPACE_FILE).exists() else {}
        )

        rerun = SyncProcess.start(env, tmp_path, "rerun", "--json")
        assert rerun.wait() == 0, rerun.stderr[-3000:]

    hs = served.homeserver
    members = (f"@{ADMIN}:localhost", f"@{BOT}:localhost")
    # Every room, created before the kill or found again after it, shows its history once.
    assert_converged(hs, data_dir, agent_ids, members=members, history=history)
    assert sum(len(rooms) for rooms in tagged_rooms(hs).values()) == AGENTS
    assert json.loads(rerun.stdout)["ok"] is True
    assert_no_secret_in(data_dir, victim.stderr + victim.stdout + rerun.stderr + rerun.stdout)
    assert spaces(hs) == [space_on_disk(data_dir)["space_id"]]
    if trap == ("POST", "/createRoom", 1, True):
        assert "creation_started_at" in in_flight, in_flight
        # Killed between the space's createRoom and saving its id: found again, not made
        # again, and dated from when its creation started.
        assert json.loads(rerun.stdout)["space_found"] is True
        assert space_on_disk(data_dir)["created_at"] == in_flight["creation_started_at"]


def json_files_valid(data_dir: Path) -> None:
    """The JSON files a kill leaves behind parse (only the journal's last line may be torn)."""
    for name in (MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE):
        if (data_dir / name).exists():
            assert isinstance(read_json_file(data_dir / name), dict), name


def assert_no_secret_in(data_dir: Path, text: str) -> None:
    secrets = {BOT_PASSWORD, ADMIN_PASSWORD}
    secrets |= {m["matrix_password"] for m in mappings_on_disk(data_dir).values()}
    secrets |= {t["access_token"] for t in tokens_on_disk(data_dir).values()}
    assert [s[:6] for s in secrets if s in text] == []
