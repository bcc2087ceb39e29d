"""`benchmarks/results.md`: machine, command, targets and one table per tier."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from benchmarks.measure import FRESH, Summary
from benchmarks.targets import Target, index, overhead

TIER_TITLES = {
    "fake": "Tier 1: in-process fake homeserver and fake Letta (respx, real HttpxTransport)",
    "synapse": "Tier 2: real Synapse on 127.0.0.1 and the fake Letta HTTP server on 127.0.0.1",
}


@dataclass(frozen=True)
class RunInfo:
    command: str
    started: datetime
    seconds: float
    notes: Sequence[str] = ()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown RAM"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    return [
        f"- CPU: {os.cpu_count()} cores ({_cpu_model()}), {_memory()}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"httpx {_version('httpx')}, respx {_version('respx')}, anyio {_version('anyio')}, "
        f"matrix-synapse {_version('matrix-synapse')}",
    ]


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _per_agent(run: Summary, base: Summary | None) -> str:
    if run.n == 0:
        return "-"
    if run.phase == FRESH:
        return "-" if base is None else f"{(run.matrix_total - base.matrix_total) / run.n:.2f}"
    return f"{run.matrix_total / run.n:.3f}"


def tier_table(runs: Sequence[Summary]) -> list[str]:
    base = overhead(index(runs), runs[0].tier)
    has_server = any(r.server_s is not None for r in runs)
    has_rss = any(r.peak_rss_mb is not None for r in runs)
    header = ["N", "phase", "runs", "wall median (s)", "range (s)"]
    header += ["in fake handlers (s)", "client (s)"] if has_server else []
    header += ["Matrix requests", "per agent¹", "password logins", "devices created"]
    header += ["peak RSS (MiB)²"] if has_rss else []
    rows: list[list[object]] = []
    for run in runs:
        row: list[object] = [f"{run.n:,}", run.phase, run.runs, f"{run.wall_s:.3f}"]
        row.append(f"{run.wall_min:.3f}-{run.wall_max:.3f}")
        if has_server:
            server = run.server_s or 0.0
            row += [f"{server:.3f}", f"{run.wall_s - server:.3f}"]
        total = f"{run.matrix_total}" + ("" if run.counts_stable else " (varied)")
        row += [total, _per_agent(run, base), run.logins, run.devices_created]
        if has_rss:
            row.append(_mib(run.peak_rss_mb))
        rows.append(row)
    return _table(header, rows)


def kinds_table(runs: Sequence[Summary]) -> list[str]:
    kinds = sorted({kind for run in runs for kind in run.matrix})
    letta = sorted({kind for run in runs for kind in run.letta})
    header = ["request kind", *(f"N={r.n:,} {r.phase}" for r in runs)]
    rows = [[kind, *(r.matrix.get(kind, 0) for r in runs)] for kind in kinds]
    rows.append(["**Matrix total**", *(f"**{r.matrix_total}**" for r in runs)])
    rows += [[f"Letta {kind}", *(r.letta.get(kind, 0) for r in runs)] for kind in letta]
    return _table(header, rows)


def targets_table(targets: Sequence[Target]) -> list[str]:
    return _table(
        ["target", "kind", "measured", "met"],
        [[t.name, t.kind, t.measured, t.verdict] for t in targets],
    )


def verdict_line(targets: Sequence[Target]) -> str:
    missed = [t for t in targets if t.met is False]
    unmeasured = [t for t in targets if t.met is None]
    if not missed and not unmeasured:
        return "**Every target is met.**"
    if not missed:
        return f"Every measured target is met; {len(unmeasured)} not measured in this run."
    kinds = sorted({t.kind for t in missed})
    return f"**{len(missed)} target(s) missed** ({', '.join(kinds)}): see the rows marked no."


NOTES = [
    "Fresh = empty data directory and a homeserver that has never seen these accounts (bot and "
    "admin registered, space created); steady = the same sync again with nothing changed in "
    "Letta. History import is off (`history_import_limit=0`): the targets exclude it.",
    "¹ Fresh: (Matrix requests - those of the N=0 fresh sync of the same tier) / N, the "
    "requests a new agent costs. Steady: Matrix requests / N.",
    "² Peak RSS is `getrusage(RUSAGE_SELF).ru_maxrss` of a child process that runs only that "
    "N (fake tier): the fresh row is the peak up to the end of the fresh sync; the steady row "
    "is the peak of the whole child (fresh sync included). It includes the in-process fakes "
    "and their state. respx's call log (every request and response kept for test assertions, "
    "not part of the client) is cleared after each request unless `--keep-respx-log` is given.",
    "In fake handlers = time inside `FakeHomeserver.handle` / `FakeLetta.handle`; client = "
    "wall - that (the library plus httpx, `MockTransport` and respx routing). Wall time is "
    "what the targets are judged on.",
    "Requests are counted by a `CountingTransport` around the real `HttpxTransport` "
    "(benchmarks/counting.py); on the fake tier the count is checked against the fake's own "
    "counter. Logins = `POST /login` requests. Devices: the fake's counter, or Synapse's own "
    "`devices` table (read-only sqlite) before and after each sync.",
    "The journal is fsynced (`SyncService(..., durable=True)`, the default).",
    "Medians over the runs listed; request counts are identical across runs unless marked "
    "(varied).",
]


def render(summaries: Sequence[Summary], targets: Sequence[Target], info: RunInfo) -> str:
    lines = [
        "# Sync benchmark results",
        "",
        f"Produced by `{info.command}` on {info.started:%Y-%m-%d %H:%M} UTC; "
        f"the whole run took {info.seconds:.0f} s.",
        "",
        *machine_lines(),
        "",
        "## Targets (issue 4)",
        "",
        verdict_line(targets),
        "",
        *targets_table(targets),
    ]
    for tier, title in TIER_TITLES.items():
        runs = [s for s in summaries if s.tier == tier]
        if not runs:
            lines += ["", f"## {title}", "", "Not run (`--skip-synapse`)."]
            continue
        lines += ["", f"## {title}", "", *tier_table(runs), "", "Requests by kind (medians):"]
        lines += ["", *kinds_table(runs)]
    failed = [s for s in summaries if s.failures]
    if failed:
        lines += ["", "## Failures", ""]
        for run in failed:
            lines += [f"- {run.tier} N={run.n} {run.phase}: {f}" for f in run.failures]
    lines += ["", "## Notes", "", *(f"- {note}" for note in [*NOTES, *info.notes])]
    return "\n".join(lines) + "\n"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
