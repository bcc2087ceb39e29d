"""Tier 3: a first sync in password mode against Synapse with its DEFAULT rate limits.

Each run starts its own Synapse on 127.0.0.1 (`default_rate_limits=True`: every `rc_*` at
Synapse's default, registration open), so every bucket starts full, and runs the real command
line (`app.cli.main(["sync", "--json"])`) with a fresh data directory against N agents of the
fake Letta served on 127.0.0.1. It records the wall time, the exit code, the 429 answers by
request kind, and the least time Synapse's limits allow for the requests that succeeded
(`app.testing.synapse_limits`: the refill time of the busiest bucket).
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.cli import main as cli_main
from app.http.httpx_transport import HttpxTransport
from app.http.transport import Request, Response, Transport
from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer
from app.testing.synapse_limits import ADDRESS, Bucket, buckets_of, least_time
from benchmarks.counting import MATRIX, classify

_PASSWORD = "bench-password-not-secret"  # noqa: S105 - throwaway local test server
SLACK = 1.25  # the target: within 1.25x of the least time


class LimitsTransport:
    """Forwards requests; counts 429s by kind and the rate-limit buckets of 2xx requests."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.uses: Counter[Bucket] = Counter()

    async def send(self, request: Request) -> Response:
        server, kind = classify(request.method, request.url)
        response = await self.inner.send(request)
        if server != MATRIX:
            return response
        self.requests[kind] += 1
        if response.status == 429:
            self.rate_limited[kind] += 1
        elif response.status < 300:
            sender = request.headers.get("Authorization", ADDRESS)
            self.uses.update(buckets_of(request.method, request.url, sender, request.json))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class LimitsRun:
    n: int
    wall_s: float
    exit_code: int
    least_s: float
    least_limiter: str
    least_actions: int
    requests: int
    rate_limited: dict[str, int]
    failures: list[str] = field(default_factory=list)

    @property
    def total_429(self) -> int:
        return sum(self.rate_limited.values())

    @property
    def ratio(self) -> float:
        return self.wall_s / self.least_s if self.least_s else float("inf")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _env(synapse: SynapseServer, letta_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "MATRIX_HOMESERVER_URL": synapse.base_url,
        "MATRIX_USERNAME": "bench_bot",
        "MATRIX_PASSWORD": _PASSWORD,
        "MATRIX_ADMIN_USERNAME": "bench_admin",
        "MATRIX_ADMIN_PASSWORD": _PASSWORD,
        "LETTA_API_URL": letta_url,
        "MATRIX_DATA_DIR": str(data_dir),
        "HISTORY_IMPORT_LIMIT": "0",
        "LOG_LEVEL": "WARNING",
    }


def _failures(stdout: str, stderr: str) -> list[str]:
    try:
        report = json.loads(stdout)
    except ValueError:
        return [line for line in stderr.splitlines() if line.startswith("error:")][:10]
    failures = report.get("failures") or []
    return [f"{f.get('agent_id')} at {f.get('step')}: {f.get('reason')}" for f in failures][:10]


def run_once(n: int, root: Path) -> LimitsRun:
    """One fresh Synapse with default limits, one first sync of N agents through the CLI."""
    letta = FakeLetta()
    for i in range(n):
        letta.add_agent(f"Agent {i}")
    with SynapseServer(root / "synapse", default_rate_limits=True) as synapse:
        with LettaHTTPServer(letta.handle) as letta_server:
            env = _env(synapse, letta_server.base_url, root / "data")
            transport = LimitsTransport(HttpxTransport())
            out, err = io.StringIO(), io.StringIO()
            began = time.perf_counter()
            code = cli_main(["sync", "--json"], env=env, transport=transport, out=out, err=err)
            wall = time.perf_counter() - began
    bound = least_time(transport.uses)
    return LimitsRun(
        n=n,
        wall_s=wall,
        exit_code=code,
        least_s=bound.seconds,
        least_limiter=bound.limiter,
        least_actions=bound.actions,
        requests=sum(transport.requests.values()),
        rate_limited=dict(transport.rate_limited),
        failures=_failures(out.getvalue(), err.getvalue()),
    )


def measure_limits(sizes: Sequence[int], repeats: int) -> list[LimitsRun]:
    runs: list[LimitsRun] = []
    for n in sizes:
        for rep in range(repeats):
            with tempfile.TemporaryDirectory(prefix=f"lms-bench-limits-{n}-") as tmp:
                run = run_once(n, Path(tmp))
            runs.append(run)
            print(
                f"  default limits N={n} run {rep + 1}: {run.wall_s:.1f}s, exit {run.exit_code}, "
                f"{run.total_429} x 429, least {run.least_s:.1f}s ({run.least_limiter})",
                flush=True,
            )
    return runs


def median_of(runs: Sequence[LimitsRun], n: int) -> LimitsRun | None:
    """The run of size n with the median wall time (the upper one of an even count)."""
    mine = sorted((r for r in runs if r.n == n), key=lambda r: r.wall_s)
    return mine[len(mine) // 2] if mine else None


def summary_rows(runs: Sequence[LimitsRun]) -> list[list[object]]:
    rows: list[list[object]] = []
    for n in sorted({r.n for r in runs}):
        mine = [r for r in runs if r.n == n]
        median = statistics.median(r.wall_s for r in mine)
        least = statistics.median(r.least_s for r in mine)
        middle = median_of(runs, n)
        assert middle is not None
        rows.append(
            [
                n,
                len(mine),
                f"{median:.1f}",
                ", ".join(f"{r.wall_s:.1f}" for r in mine),
                f"{least:.1f} ({middle.least_limiter}, {middle.least_actions} actions)",
                f"{median / least:.2f}" if least else "-",
                ", ".join(str(r.exit_code) for r in mine),
                f"{statistics.median(r.total_429 for r in mine):g}",
                f"{statistics.median(r.requests for r in mine):g}",
            ]
        )
    return rows
