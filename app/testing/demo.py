"""`letta-matrix-sync demo`: a full sync against in-process fakes, no server, no config.

Seeds a dozen agents, syncs, renames two, syncs again, then shows that a steady-state sync
costs only a handful of requests. Everything lives in memory and a temporary directory.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from app.cli.output import Output
from app.config import SyncConfig
from app.state.opening import open_store
from app.sync.report import SyncReport
from app.sync.service import SyncService
from app.testing.homeserver import FakeHomeserver
from app.testing.inprocess import InProcessTransport
from app.testing.letta import FakeLetta

AGENT_NAMES = [
    "Meridian", "Scout", "Archivist", "Helios", "Quill", "Nova",
    "Atlas", "Wren", "Cipher", "Juniper", "Orbit", "Sage",
]  # fmt: skip


def seed(letta: FakeLetta) -> list[str]:
    ids = [letta.add_agent(name) for name in AGENT_NAMES]
    letta.add_message(ids[0], "user_message", "Hello Meridian, are you there?")
    letta.add_message(ids[0], "assistant_message", "Always. What shall we work on?")
    return ids


async def run_demo(out: Output) -> int:
    homeserver, letta = FakeHomeserver(server_name="demo.localhost", seed=7), FakeLetta()
    ids = seed(letta)
    transport = InProcessTransport([homeserver, letta])
    with tempfile.TemporaryDirectory() as tmp:
        config = SyncConfig(
            homeserver_url=homeserver.base_url,
            username="letta",
            password=secrets.token_urlsafe(16),
            admin_username="admin",
            admin_password=secrets.token_urlsafe(16),
            letta_url=letta.base_url,
            data_dir=Path(tmp) / "data",
        )
        out.heading(f"1. First sync: {len(ids)} Letta agents, empty homeserver")
        first = await _sync(config, transport, out)
        await _show_agents(out, homeserver, config)
        out.heading("2. Two agents renamed in Letta, sync again")
        letta.rename(ids[1], "Scout Prime")
        letta.rename(ids[2], "Librarian")
        second = await _sync(config, transport, out)
        out.line(f"renamed: {', '.join(sorted(letta.agent(a).name for a in second.renamed))}")
        out.heading("3. Nothing changed: steady-state sync")
        before = transport.requests
        await _sync(config, transport, out)
        out.line(f"Matrix + Letta requests for {len(ids)} agents: {transport.requests - before}")
    return 0 if first.ok and second.ok else 1


async def _sync(config: SyncConfig, transport: InProcessTransport, out: Output) -> SyncReport:
    async with SyncService(config, transport) as service:
        with out.progress() as progress:
            report = await service.sync(progress)
    out.report(report)
    return report


async def _show_agents(out: Output, homeserver: FakeHomeserver, config: SyncConfig) -> None:
    rows = []
    store = await open_store(config.store_location, read_only=True)
    try:
        mappings, space = store.all(), store.space
    finally:
        await store.aclose()
    for mapping in mappings:
        room = mapping.room_id or ""
        joined = sorted(u for u, s in homeserver.members(room).items() if s == "join")
        name = (homeserver.state(room, "m.room.name") or {}).get("name", "")
        rows.append((mapping.agent_name, mapping.matrix_user_id, name, len(joined)))
    out.table("Agents on the homeserver", ["agent", "Matrix user", "room name", "joined"], rows)
    out.line(f"space: {space.space_id} ({space.name})")
