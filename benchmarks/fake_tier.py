"""Tier 1: the real `SyncService` against the in-process fake homeserver and fake Letta.

Each N runs in a fresh child process (`run.py --child-fake N`) so that the peak RSS read with
`getrusage` belongs to that run alone. The child runs a fresh sync (empty data directory and
homeserver) and then a steady-state re-sync with nothing changed in Letta, through the real
`HttpxTransport` over `httpx.MockTransport(router.async_handler)`, with the journal fsynced
(`durable=True`).

Two things about the fake are measured apart from the client:
- the time spent inside the fakes' request handlers (`server_s`), so the client's own share is
  wall time minus that;
- respx records every request and response on the router for test assertions; nothing in a
  benchmark reads that log, and kept for 60,000 requests it is most of the process's memory.
  It is cleared after every request unless `keep_respx_log` is set.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import httpx

from app.config import SyncConfig
from app.http.httpx_transport import HttpxTransport
from app.sync.service import SyncService
from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.fake_routing import RoutedFake
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver
from app.testing.letta import FakeLetta
from benchmarks.counting import CountingTransport
from benchmarks.measure import FRESH, STEADY, Measurement, peak_rss_mb

TIER = "fake"
RUN_SCRIPT = Path(__file__).resolve().parent / "run.py"


class _Stopwatch:
    """Total time spent inside the fakes' handlers."""

    def __init__(self) -> None:
        self.seconds = 0.0


class _TimedHandling(RoutedFake):
    """Adds the time spent in `handle` to a stopwatch; mixed in before a fake's class."""

    stopwatch: _Stopwatch

    def handle(self, request: FakeRequest) -> FakeResponse:
        began = time.perf_counter()
        try:
            return super().handle(request)
        finally:
            self.stopwatch.seconds += time.perf_counter() - began


class TimedHomeserver(_TimedHandling, FakeHomeserver):
    def __init__(self, stopwatch: _Stopwatch) -> None:
        super().__init__(seed=1)
        self.stopwatch = stopwatch


class TimedLetta(_TimedHandling, FakeLetta):
    def __init__(self, stopwatch: _Stopwatch) -> None:
        super().__init__()
        self.stopwatch = stopwatch


def timed_harness(data_dir: Path, stopwatch: _Stopwatch) -> SyncHarness:
    return SyncHarness(data_dir, homeserver=TimedHomeserver(stopwatch), letta=TimedLetta(stopwatch))


def _mock_transport(harness: SyncHarness, keep_respx_log: bool) -> httpx.MockTransport:
    router = harness.router
    if keep_respx_log:
        return httpx.MockTransport(router.async_handler)

    async def handler(request: httpx.Request) -> httpx.Response:
        try:
            return await router.async_handler(request)
        finally:
            router.reset()  # drop respx's call log; counters live in the fakes

    return httpx.MockTransport(handler)


async def measure_fake(n: int, keep_respx_log: bool = False) -> list[Measurement]:
    """A fresh sync and a steady re-sync of `n` agents; history import disabled."""
    stopwatch = _Stopwatch()
    with tempfile.TemporaryDirectory(prefix="lms-bench-") as tmp:
        harness = timed_harness(Path(tmp) / "data", stopwatch)
        for i in range(n):
            harness.letta.add_agent(f"Agent {i}")
        config = harness.config(history_import_limit=0)
        gc.collect()
        start_rss = peak_rss_mb()
        runs = []
        for phase in (FRESH, STEADY):
            runs.append(
                await _measure_sync(harness, config, phase, start_rss, stopwatch, keep_respx_log)
            )
    return runs


async def _measure_sync(
    harness: SyncHarness,
    config: SyncConfig,
    phase: str,
    start_rss: float,
    stopwatch: _Stopwatch,
    keep_respx_log: bool,
) -> Measurement:
    homeserver = harness.homeserver
    logins, devices = homeserver.logins, homeserver.devices_created
    homeserver.requests_by_kind.clear()
    stopwatch.seconds = 0.0
    mock = _mock_transport(harness, keep_respx_log)
    async with httpx.AsyncClient(transport=mock) as client:
        transport = CountingTransport(HttpxTransport(client))
        began = time.perf_counter()
        async with SyncService(config, transport, durable=True) as service:
            report = await service.sync()
        wall = time.perf_counter() - began
    served = sum(homeserver.requests_by_kind.values())
    failures = [f"{f.agent_id} at {f.step}: {f.reason}" for f in report.failures]
    if report.letta_error:
        failures.append(f"letta: {report.letta_error}")
    if served != sum(transport.matrix.values()):
        counted = sum(transport.matrix.values())
        failures.append(f"count mismatch: fake served {served}, transport counted {counted}")
    return Measurement(
        tier=TIER,
        n=len(harness.letta.agents()),
        phase=phase,
        wall_s=wall,
        matrix=dict(transport.matrix),
        letta=dict(transport.letta),
        logins=homeserver.logins - logins,
        devices_created=homeserver.devices_created - devices,
        peak_rss_mb=peak_rss_mb(),
        start_rss_mb=start_rss,
        server_s=stopwatch.seconds,
        ok=not failures,
        failures=failures[:10],
    )


def child_main(n: int, keep_respx_log: bool = False) -> int:
    """Entry point of the child process: print the measurements as one JSON line."""
    measurements = anyio.run(measure_fake, n, keep_respx_log)
    sys.stdout.write(json.dumps([m.to_json() for m in measurements]) + "\n")
    return 0


def run_child(n: int, timeout: float, keep_respx_log: bool = False) -> list[Measurement]:
    cmd = [sys.executable, str(RUN_SCRIPT), "--child-fake", str(n)]
    if keep_respx_log:
        cmd.append("--keep-respx-log")
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        cmd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child for N={n} failed:\n{done.stderr[-4000:]}")
    return [Measurement.from_json(item) for item in json.loads(done.stdout.splitlines()[-1])]


def run_fake_tier(
    plan: Sequence[tuple[int, int]], timeout: float, keep_respx_log: bool = False
) -> list[Measurement]:
    """`plan` lists (N, repetitions); every repetition is its own child process."""
    results: list[Measurement] = []
    for n, repetitions in plan:
        for rep in range(repetitions):
            began = time.perf_counter()
            runs = run_child(n, timeout, keep_respx_log)
            results.extend(runs)
            took = time.perf_counter() - began
            walls = ", ".join(f"{m.phase} {m.wall_s:.2f}s" for m in runs)
            print(f"  fake N={n} run {rep + 1}/{repetitions}: {walls} ({took:.1f}s)", flush=True)
    return results
