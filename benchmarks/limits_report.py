"""The default-rate-limits section of `benchmarks/results.md`.

The section sits between two markers, so a default-limits run replaces only its own section
and a run of the other tiers keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.limits_tier import SLACK, LimitsRun, median_of, summary_rows
from benchmarks.report import RunInfo, machine_lines

BEGIN = "<!-- default-limits: begin -->"
END = "<!-- default-limits: end -->"

HEADER = [
    "N",
    "runs",
    "wall median (s)",
    "each run (s)",
    "least time the limits allow (s)¹",
    "median / least",
    "exit codes",
    "429s (median)",
    "Matrix requests (median)",
]

NOTES = [
    "¹ For the requests that succeeded, per bucket (limiter x user or client address): "
    "(actions - burst) / per_second, Synapse's defaults (`app/testing/synapse_limits.py`); "
    "the largest over all buckets. No client can finish those requests sooner.",
    "Each run: a new Synapse (1.163 defaults for every `rc_*`, open registration) on "
    "127.0.0.1, an empty data directory, `letta-matrix-sync sync --json` through "
    "`app.cli.main`, N agents of the fake Letta over HTTP on 127.0.0.1, history import off, "
    "bot and admin separate accounts registered by the sync itself. Wall time excludes "
    "Synapse's start.",
    f"Target (issue 10, finding 6): exit 0 within {SLACK:g}x of the least time.",
]


def verdict(runs: Sequence[LimitsRun]) -> str:
    sizes = sorted({r.n for r in runs})
    missed = []
    for n in sizes:
        middle = median_of(runs, n)
        assert middle is not None
        if any(r.exit_code != 0 for r in runs if r.n == n) or middle.ratio > SLACK:
            missed.append(n)
    if not missed:
        return f"**Met at every N**: every run exited 0, medians within {SLACK:g}x of the bound."
    return f"**Missed at N = {', '.join(map(str, missed))}** (exit code or time)."


def section(runs: Sequence[LimitsRun], info: RunInfo) -> str:
    rows = summary_rows(runs)
    lines = [
        BEGIN,
        "## Tier 3: first sync on Synapse's default rate limits (password mode)",
        "",
        f"Produced by `{info.command}` on {info.started:%Y-%m-%d %H:%M} UTC; "
        f"the whole run took {info.seconds:.0f} s.",
        "",
        *machine_lines(),
        "",
        verdict(runs),
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join(["---"] * len(HEADER)) + " |",
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
        "",
        "429s by request kind (every run):",
        "",
        *(f"- N={r.n}: {dict(sorted(r.rate_limited.items())) or 'none'}" for r in runs),
    ]
    failed = [r for r in runs if r.failures]
    if failed:
        lines += ["", "Failures:", ""]
        lines += [f"- N={r.n}: {failure}" for r in failed for failure in r.failures]
    lines += ["", *(f"- {note}" for note in [*NOTES, *info.notes]), END]
    return "\n".join(lines) + "\n"


def kept_section(path: Path, begin: str = BEGIN, end: str = END) -> str:
    """The section between `begin` and `end` of an existing report, or "" if it has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        return ""
    return text[start : stop + len(end)] + "\n"


def with_section(report: str, new_section: str, begin: str = BEGIN, end: str = END) -> str:
    """`report` with its section between the markers replaced by (or extended with)
    `new_section`."""
    start, stop = report.find(begin), report.find(end)
    if start >= 0 and stop > start:
        return report[:start] + new_section + report[stop + len(end) :].lstrip("\n")
    return report.rstrip("\n") + "\n\n" + new_section
