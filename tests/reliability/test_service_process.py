"""`letta-matrix-sync run` as a real process over the fakes served on 127.0.0.1: it syncs at
start and on POST /sync, and SIGTERM during a sync lets the sync finish, then exits 0 with
everything saved."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from served_fakes import Served, SyncProcess, Trap, free_port, sync_env, wait_for

from app.state.store import JOURNAL_FILE, MAPPINGS_FILE

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_during_a_webhook_sync_finishes_it_and_exits_0(
    tmp_path: Path, backend: str
) -> None:
    served = Served()
    first = served.letta.add_agent("First")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with served.running() as (matrix_url, letta_url):
        env = sync_env(
            matrix_url,
            letta_url,
            tmp_path / "data",
            SYNC_INTERVAL="3600",
            LISTEN_ADDRESS=f"127.0.0.1:{port}",
            SYNC_BACKEND=backend,
        )
        process = SyncProcess.start(env, tmp_path, "run", command="run")
        try:
            assert wait_for(lambda: ready(base), process), process.stderr
            # The second agent's room creation is held back while SIGTERM arrives.
            served.trap = Trap("POST", "/createRoom", k=1, hold=True)
            second = served.letta.add_agent("Second")
            assert httpx.post(f"{base}/sync", timeout=5).status_code == 202
            assert served.trap.fired.wait(60)
            process.proc.send_signal(signal.SIGTERM)
            metrics = httpx.get(f"{base}/metrics", timeout=5).text  # still serving meanwhile
            served.trap.release.set()
            code = process.wait()
        finally:
            if process.proc.poll() is None:
                process.kill()
    assert code == 0, process.stderr
    mappings = json.loads((tmp_path / "data" / MAPPINGS_FILE).read_text())
    assert mappings[first]["room_created"] and mappings[second]["room_created"]
    room = mappings[second]["room_id"]
    assert served.homeserver.members(room)[mappings[second]["matrix_user_id"]] == "join"
    assert not (tmp_path / "data" / JOURNAL_FILE).exists()  # folded in before exiting
    syncs = {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "letta_matrix_sync_syncs_total"
    }
    assert syncs == {"ok": 1.0}  # the first; the second was still running
