"""`run` on PostgreSQL, in this process: the daemon takes the lease, syncs as the leader and
says so, and its writes pass only while the lease holds. (The three-replica failover runs in
child processes: tests/reliability/test_replicas_process.py.)"""

from __future__ import annotations

from functools import partial

import anyio
import httpx
import pytest

from app.daemon.service import SyncDaemon
from app.daemon.settings import ServiceSettings
from app.state.opening import open_store
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio


async def never(_seconds: float) -> None:
    """The daemon's waits: none ends while the test looks (shutdown cancels them)."""
    await anyio.sleep_forever()


async def test_a_daemon_on_postgresql_takes_the_lease_syncs_and_reports_itself_leader(
    sync_harness: SyncHarness, postgres_url: str
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Replicated")
    config = h.config(store_url=postgres_url)
    settings = ServiceSettings(interval=3600, host="127.0.0.1", port=0)
    daemon = SyncDaemon(config, settings, h.transport(), pacing=h.clock.pacing(), sleep=never)

    async with anyio.create_task_group() as group:
        port = await group.start(partial(daemon.run, signals=False))
        with anyio.fail_after(30):
            await daemon.runner.wait_for_syncs(1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ready = await client.get("/readyz")
            metrics = (await client.get("/metrics")).text
        daemon.shutdown()

    assert ready.status_code == 200 and ready.json()["role"] == "leader", ready.text
    assert "letta_matrix_sync_leader 1.0" in metrics
    store = await open_store(postgres_url, read_only=True)
    try:
        mapping = store.get(agent_id)
        assert mapping is not None and mapping.room_id is not None
        assert h.homeserver.members(mapping.room_id)[h.admin_id] == "join"
    finally:
        await store.aclose()
