"""A first sync on a Synapse with its default rate limits: the 429s are waited out.

Small on purpose (CI): five registrations against `rc_registration` (burst 3, then one every
5.9 s) make the sync wait about 12 s. The benchmark (`benchmarks/run.py --default-limits`)
measures 30 and 50 agents.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from synapse_inspect import Inspector, assert_converged_on_synapse

from app import SyncConfig, SyncService
from app.http.httpx_transport import HttpxTransport
from app.testing.counting import StatusCounter
from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer

pytestmark = pytest.mark.anyio


async def test_a_first_sync_waits_out_the_default_limits_and_converges(
    synapse_default_limits: SynapseServer, tmp_path: Path
) -> None:
    synapse = synapse_default_limits
    letta = FakeLetta()
    agents = [letta.add_agent(f"Limited agent {n}") for n in range(3)]
    inspector = Inspector(synapse)
    before = inspector.snapshot()
    transport = StatusCounter(HttpxTransport())
    with LettaHTTPServer(letta.handle) as letta_server:
        config = SyncConfig(
            homeserver_url=synapse.base_url,
            username="limited_bot",
            password="limited-bot-password",
            admin_username="limited_admin",
            admin_password="limited-admin-password",
            letta_url=letta_server.base_url,
            data_dir=tmp_path / "data",
        )
        try:
            async with SyncService(config, transport) as service:
                report = await service.sync()
        finally:
            await transport.aclose()

    assert transport.statuses[429] > 0, "the limits were never reached"
    assert report.ok, report.failures
    members = ("@limited_admin:localhost", "@limited_bot:localhost")
    assert_converged_on_synapse(inspector, before, config.data_dir, agents, members)
