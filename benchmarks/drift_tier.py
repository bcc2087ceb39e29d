"""Issue 11: what a steady sync costs now that it reads the admin's /sync, and what the first
(adopting) read costs, beside the figures measured before.

    python -m benchmarks.drift_tier [--fake-n 10000] [--crowded-n 200] [--adopt-n 500]
                                    [--repeats 3]

1. the in-process fakes at `--fake-n` agents: a fresh sync, one that reads its changes, then
   the steady sync measured;
2. a real Synapse on 127.0.0.1 at `--crowded-n` agents, with one person in
   `MATRIX_INVITE_USERS` who never accepts and another invited into every room by hand, who
   joins: the steady sync measured;
3. the same Synapse at `--adopt-n` agents: a fresh sync, then the saved view deleted (a
   deployment upgrading from a release that kept none), the adopting sync measured, then the
   steady one.

Each measured sync runs `--repeats` times (an adopting one with the view deleted each time):
the table gives the median wall time and the range. Requests are counted on the client side
(`CountingTransport`). The section it writes into
`benchmarks/results.md` sits between markers; the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import anyio

from app.config import SyncConfig
from app.http.httpx_transport import HttpxTransport
from app.http.transport import Transport
from app.state.json_store import VIEW_FILE
from app.sync.service import SyncService
from app.testing.harness import SyncHarness
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer
from benchmarks.counting import CountingTransport
from benchmarks.limits_report import with_section
from benchmarks.synapse_tier import bench_config, letta_with

RESULTS = Path(__file__).with_name("results.md")
BEGIN, END = "<!-- drift: begin -->", "<!-- drift: end -->"
_PASSWORD = "bench-password-not-secret"  # noqa: S105 - throwaway local test server
STEADY_BUDGET = 3


@dataclass(frozen=True)
class Row:
    what: str
    before: str  # today's figure, with where it comes from
    walls: tuple[float, ...]
    requests: int  # the most any repeat made
    by_kind: dict[str, int]
    ok: bool

    def cells(self) -> list[str]:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.by_kind.items()))
        wall = f"{statistics.median(self.walls):.2f}"
        if len(self.walls) > 1:
            wall += f" ({min(self.walls):.2f}-{max(self.walls):.2f}, {len(self.walls)} runs)"
        return [self.what, self.before, wall, str(self.requests), kinds]


async def _counted(config: SyncConfig, inner: Transport) -> tuple[float, CountingTransport, bool]:
    counting = CountingTransport(inner)
    try:
        began = time.perf_counter()
        async with SyncService(config, counting) as service:
            report = await service.sync()
        return time.perf_counter() - began, counting, report.ok
    finally:
        await counting.aclose()


async def _row(
    what: str,
    before: str,
    config: SyncConfig,
    transport: Callable[[], Transport],
    repeats: int = 1,
    between: Callable[[], None] = lambda: None,
) -> Row:
    walls, most, kinds, ok = [], -1, {}, True
    for _ in range(repeats):
        between()
        wall, counting, run_ok = await _counted(config, transport())
        walls.append(wall)
        ok = ok and run_ok
        if sum(counting.matrix.values()) > most:
            most, kinds = sum(counting.matrix.values()), dict(counting.matrix)
    row = Row(what, before, tuple(walls), most, kinds, ok)
    print(" | ".join(row.cells()), f"ok={ok}", flush=True)
    return row


async def fake_steady(n: int, root: Path, repeats: int) -> Row:
    h = SyncHarness(root / "fake-data")
    for i in range(n):
        h.letta.add_agent(f"Agent {i}")
    for _ in range(2):  # the fresh sync, then the one that reads its changes
        async with h.service() as service:
            await service.sync()
    before = "203 requests, 2.14 s (results.md, tier 1, steady N=10,000)"
    return await _row(f"fake, steady N={n:,}", before, h.config(), h.transport, repeats)


def _invite_by_hand(synapse: SynapseServer, config: SyncConfig, person: tuple[str, str]) -> None:
    """The admin invites `person` into every agent room, and the person joins."""
    tokens = json.loads((config.data_dir / "access_tokens.json").read_text())
    admin_token = tokens[f"@{config.admin_username}:{synapse.server_name}"]["access_token"]
    mappings = json.loads((config.data_dir / "agent_user_mappings.json").read_text())
    user_id, token = person
    for mapping in mappings.values():
        room = "/_matrix/client/v3/rooms/" + quote(mapping["room_id"], safe="")
        synapse.request("POST", room + "/invite", {"user_id": user_id}, token=admin_token)
        synapse.request("POST", room + "/join", {}, token=token)


async def synapse_rows(crowded_n: int, adopt_n: int, root: Path, repeats: int) -> list[Row]:
    rows: list[Row] = []
    with SynapseServer(root / "synapse") as synapse:
        waiting, _ = synapse.register_admin("bench_waiting", _PASSWORD)
        colleague = synapse.register_admin("bench_colleague", _PASSWORD)
        with LettaHTTPServer(letta_with(crowded_n).handle) as letta:
            config = bench_config(synapse, letta.base_url, "crowded", root / "data-crowded")
            config = replace(config, invite_users=(waiting,))
            await _counted(config, HttpxTransport())
            _invite_by_hand(synapse, config, colleague)
            await _counted(config, HttpxTransport())  # reads the joins
            before = "207 requests (issue 11: one waiting invitee, N=200)"
            what = f"Synapse, steady N={crowded_n}, a waiting invitee and a member by hand"
            rows.append(await _row(what, before, config, HttpxTransport, repeats))
        with LettaHTTPServer(letta_with(adopt_n).handle) as letta:
            config = bench_config(synapse, letta.base_url, "adopt", root / "data-adopt")
            fresh = await _row(f"Synapse, fresh N={adopt_n}", "-", config, HttpxTransport)
            adopting = await _row(
                f"Synapse, first (adopting) sync N={adopt_n}",
                "none: no view before this release",
                config,
                HttpxTransport,
                repeats,
                between=lambda: (config.data_dir / VIEW_FILE).unlink(missing_ok=True),
            )
            steady = await _row(
                f"Synapse, steady N={adopt_n}",
                "13 requests, 12.6 s (issue 11, N=500)",
                config,
                HttpxTransport,
                repeats,
            )
            rows += [fresh, adopting, steady]
    return rows


def section(rows: list[Row], command: str) -> str:
    lines = [
        BEGIN,
        "## Issue 11: steady state and the adopting read",
        "",
        f"`{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Steady-state budget: at most {STEADY_BUDGET} Matrix requests.",
        "",
        "| sync | before (today's figure) | wall s, median (range) | Matrix requests | by kind |",
        "| --- | --- | --- | --- | --- |",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
    ]
    steady = [row for row in rows if "steady" in row.what]
    met = all(row.requests <= STEADY_BUDGET for row in steady)
    lines.append(f"Budget met by every steady sync: {'yes' if met else '**no**'}.")
    failed = [row.what for row in rows if not row.ok]
    if failed:
        lines.append(f"Syncs with a failure: {', '.join(failed)}.")
    lines.append(END)
    return "\n".join(lines) + "\n"


async def measure(fake_n: int, crowded_n: int, adopt_n: int, repeats: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lms-bench-drift-") as tmp:
        root = Path(tmp)
        fake = await fake_steady(fake_n, root, repeats)
        return [fake, *await synapse_rows(crowded_n, adopt_n, root, repeats)]


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fake-n", type=int, default=10_000)
    parser.add_argument("--crowded-n", type=int, default=200)
    parser.add_argument("--adopt-n", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = anyio.run(measure, args.fake_n, args.crowded_n, args.adopt_n, args.repeats)
    command = "python -m benchmarks.drift_tier"
    sizes = (args.fake_n, args.crowded_n, args.adopt_n, args.repeats)
    if sizes != (10_000, 200, 500, 3):
        command += " --fake-n {} --crowded-n {} --adopt-n {} --repeats {}".format(*sizes)
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(with_section(old, section(rows, command), BEGIN, END), encoding="utf-8")
    print(f"wrote {args.output}")
    steady_ok = all(r.requests <= STEADY_BUDGET for r in rows if "steady" in r.what)
    return 0 if steady_ok and all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(cli())
