"""Appservice mode against Synapse's default rate limits, beside password mode, in one run.

    python -m benchmarks.appservice_tier [--n 200] [--output benchmarks/appservice_results.md]

Two Synapses on 127.0.0.1: the contract tier's password-mode one (open registration, every
rate limit raised out of reach) and a production-shaped one (this library's registration
loaded, `enable_registration: false`, no `rc_*` setting: Synapse's defaults). For each, a
fresh sync of N agents from nothing, then a steady sync. Counted on the client side: Matrix
requests, HTTP 429 answers, logins; devices from Synapse's own database.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import anyio

from app.cli import main
from app.config import SyncConfig
from app.http.httpx_transport import HttpxTransport
from app.identity.registration import load_registration
from app.sync.service import SyncService
from app.testing.counting import StatusCounter
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer
from app.testing.synapse.appservice import AppserviceSynapse
from benchmarks.counting import CountingTransport
from benchmarks.synapse_tier import device_counts, letta_with

RESULTS = Path(__file__).with_name("appservice_results.md")
_PASSWORD = "bench-password-not-secret"  # noqa: S105 - throwaway local test server


@dataclass(frozen=True)
class Row:
    mode: str
    n: int
    phase: str
    wall_s: float
    matrix_requests: int
    rate_limited: int
    logins: int
    devices: int
    ok: bool

    def cells(self) -> list[str]:
        per_agent = self.matrix_requests / self.n if self.n else 0.0
        return [
            self.mode,
            str(self.n),
            self.phase,
            f"{self.wall_s:.1f}",
            str(self.matrix_requests),
            f"{per_agent:.2f}",
            str(self.rate_limited),
            str(self.logins),
            str(self.devices),
            "yes" if self.ok else "NO",
        ]


async def _measure(config: SyncConfig, synapse_dir: Path, mode: str, phase: str, n: int) -> Row:
    before = device_counts(synapse_dir)
    statuses = StatusCounter(HttpxTransport())
    counting = CountingTransport(statuses)
    try:
        began = time.perf_counter()
        async with SyncService(config, counting) as service:
            report = await service.sync()
        wall = time.perf_counter() - began
    finally:
        await counting.aclose()
    after = device_counts(synapse_dir)
    devices = sum(max(0, c - before.get(user, 0)) for user, c in after.items())
    matrix = sum(counting.matrix.values())
    logins = counting.matrix.get("login", 0)
    return Row(mode, n, phase, wall, matrix, statuses.statuses[429], logins, devices, report.ok)


async def _both_phases(config: SyncConfig, synapse_dir: Path, mode: str, n: int) -> list[Row]:
    rows = []
    for phase in ("fresh", "steady"):
        row = await _measure(config, synapse_dir, mode, phase, n)
        print(" | ".join(row.cells()), flush=True)
        rows.append(row)
    return rows


def _write_registration(path: Path) -> None:
    env = {"MATRIX_USERNAME": "bench_as_bot", "MATRIX_ADMIN_USERNAME": "bench_as_admin"}
    argv = ["registration", "--server-name", "localhost", "--output", str(path)]
    if main(argv, env=env, out=io.StringIO(), err=io.StringIO()) != 0:
        raise RuntimeError("letta-matrix-sync registration failed")


async def measure(n: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="lms-bench-as-") as tmp:
        root = Path(tmp)
        with LettaHTTPServer(letta_with(n).handle) as letta, SynapseServer(root / "pw") as synapse:
            config = SyncConfig(
                homeserver_url=synapse.base_url,
                username="bench_pw_bot",
                password=_PASSWORD,
                admin_username="bench_pw_admin",
                admin_password=_PASSWORD,
                letta_url=letta.base_url,
                data_dir=root / "data-pw",
                history_import_limit=0,
            )
            rows += await _both_phases(config, synapse.data_dir, "password, raised limits", n)
        registration = root / "registration.yaml"
        _write_registration(registration)
        sender = load_registration(registration).sender_localpart
        with (
            LettaHTTPServer(letta_with(n).handle) as letta,
            AppserviceSynapse(root / "as", registration) as synapse,
        ):
            config = replace(
                config,
                homeserver_url=synapse.base_url,
                username=sender,
                password="",
                admin_username="bench_as_admin",
                admin_password=None,
                letta_url=letta.base_url,
                data_dir=root / "data-as",
                appservice_registration=registration,
            )
            rows += await _both_phases(config, synapse.data_dir, "appservice, default limits", n)
    return rows


HEADER = ["mode", "N", "phase", "wall s", "Matrix requests", "per agent", "429s", "logins"]
HEADER += ["new devices", "ok"]


def report(rows: list[Row]) -> str:
    lines = [
        "# Appservice mode vs password mode on a real Synapse",
        "",
        "`python -m benchmarks.appservice_tier`: one run, both modes, history import off.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + " --- |" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="agents (default 200)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown report path")
    args = parser.parse_args()
    rows = anyio.run(measure, args.n)
    args.output.write_text(report(rows), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(cli())
