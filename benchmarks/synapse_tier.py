"""Tier 2: the real `SyncService` against a real Synapse and the fake Letta over HTTP.

Both servers listen on 127.0.0.1 only. Requests are counted on the client side by a
`CountingTransport` around a real pooled `HttpxTransport`; devices are counted in Synapse's
own database (read-only), so a login or registration the client does not report still shows.
Every N gets its own bot and admin accounts and data directory on one Synapse, so each fresh
sync starts from nothing: new accounts, a new space, new agent users.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from app.config import SyncConfig
from app.http.httpx_transport import HttpxTransport
from app.sync.service import SyncService
from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer
from benchmarks.counting import CountingTransport
from benchmarks.measure import FRESH, STEADY, Measurement

TIER = "synapse"
DB_NAME = "homeserver.db"
_PASSWORD = "bench-password-not-secret"  # noqa: S105 - throwaway local test server


def device_counts(data_dir: Path) -> dict[str, int]:
    """user id -> number of devices, read from Synapse's sqlite database (read-only)."""
    uri = f"file:{data_dir / DB_NAME}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=30) as db:
        rows = db.execute("SELECT user_id, COUNT(*) FROM devices GROUP BY user_id").fetchall()
    return {str(user): int(count) for user, count in rows}


def _new_devices(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(max(0, count - before.get(user, 0)) for user, count in after.items())


def bench_config(
    synapse: SynapseServer, letta_url: str, name: str | int, data_dir: Path
) -> SyncConfig:
    """A sync of its own bot and admin (named after `name`) on `synapse`, history import off."""
    return SyncConfig(
        homeserver_url=synapse.base_url,
        username=f"bench_bot_{name}",
        password=_PASSWORD,
        admin_username=f"bench_admin_{name}",
        admin_password=_PASSWORD,
        letta_url=letta_url,
        data_dir=data_dir,
        history_import_limit=0,
    )


def letta_with(n: int) -> FakeLetta:
    """A fake Letta listing `n` agents named "Agent 0", "Agent 1", ..."""
    letta = FakeLetta()
    for i in range(n):
        letta.add_agent(f"Agent {i}")
    return letta


async def _measure_sync(config: SyncConfig, synapse_dir: Path, n: int, phase: str) -> Measurement:
    before = device_counts(synapse_dir)
    transport = CountingTransport(HttpxTransport())
    try:
        began = time.perf_counter()
        async with SyncService(config, transport, durable=True) as service:
            report = await service.sync()
        wall = time.perf_counter() - began
    finally:
        await transport.aclose()
    after = device_counts(synapse_dir)
    failures = [f"{f.agent_id} at {f.step}: {f.reason}" for f in report.failures]
    if report.letta_error:
        failures.append(f"letta: {report.letta_error}")
    return Measurement(
        tier=TIER,
        n=n,
        phase=phase,
        wall_s=wall,
        matrix=dict(transport.matrix),
        letta=dict(transport.letta),
        logins=transport.matrix.get("login", 0),
        devices_created=_new_devices(before, after),
        ok=not failures,
        failures=failures[:10],
    )


async def measure_synapse(ns: Sequence[int]) -> list[Measurement]:
    """Fresh and steady syncs for every N in `ns` on one Synapse started here."""
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="lms-bench-synapse-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        with SynapseServer(root / "synapse") as synapse:
            print(f"  Synapse ready in {time.perf_counter() - began:.1f}s", flush=True)
            for n in ns:
                letta = letta_with(n)
                with LettaHTTPServer(letta.handle) as letta_server:
                    config = bench_config(synapse, letta_server.base_url, n, root / f"data-{n}")
                    for phase in (FRESH, STEADY):
                        run = await _measure_sync(config, synapse.data_dir, n, phase)
                        results.append(run)
                        print(
                            f"  synapse N={n} {phase}: {run.wall_s:.2f}s, "
                            f"{run.matrix_total} Matrix requests, ok={run.ok}",
                            flush=True,
                        )
    return results
