"""The targets of issue 4 (and issue 11's steady-state budget), checked against the medians
of the benchmark runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from benchmarks.measure import FRESH, STEADY, Summary

REQUESTS = "count"
TIME = "time"
MEMORY = "memory"
CORRECTNESS = "correctness"

MAX_REQUESTS_PER_NEW_AGENT = 7
# Issue 11: a steady sync reads the admin's /sync once, whatever N (issue 4 had 5 + N/20).
STEADY_MAX_REQUESTS = 3
BIG_N = 10_000
MAX_FRESH_BIG_S = 60.0
MAX_FRESH_BIG_RSS_MB = 300.0
MAX_STEADY_BIG_S = 5.0


@dataclass(frozen=True)
class Target:
    kind: str
    name: str
    measured: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "**no**", None: "not measured"}[self.met]


Index = dict[tuple[str, int, str], Summary]


def index(summaries: Iterable[Summary]) -> Index:
    return {(s.tier, s.n, s.phase): s for s in summaries}


def overhead(runs: Index, tier: str) -> Summary | None:
    """The fresh sync with no agents: what every fresh sync costs before any agent."""
    return runs.get((tier, 0, FRESH))


def per_new_agent(run: Summary, base: Summary) -> float:
    return (run.matrix_total - base.matrix_total) / run.n


def _tiers(runs: Index) -> list[str]:
    return sorted({tier for tier, _, _ in runs}, key=lambda t: (t != "fake", t))


def _sizes(runs: Index, tier: str) -> list[int]:
    return sorted({n for t, n, _ in runs if t == tier and n > 0})


def fresh_targets(runs: Index, tier: str) -> list[Target]:
    base = overhead(runs, tier)
    targets: list[Target] = []
    for n in _sizes(runs, tier):
        run = runs.get((tier, n, FRESH))
        if run is None or base is None:
            continue
        ratio = per_new_agent(run, base)
        targets.append(
            Target(
                REQUESTS,
                f"{tier}, fresh N={n:,}: Matrix requests per new agent"
                f" ≤ {MAX_REQUESTS_PER_NEW_AGENT}",
                f"({run.matrix_total} - {base.matrix_total}) / {n} = {ratio:.2f}",
                ratio <= MAX_REQUESTS_PER_NEW_AGENT,
            )
        )
        agent_logins = run.logins - base.logins
        targets.append(
            Target(
                REQUESTS,
                f"{tier}, fresh N={n:,}: password logins for agents = 0",
                f"{agent_logins} (total {run.logins}, N=0 sync {base.logins})",
                agent_logins == 0,
            )
        )
    return targets


def steady_targets(runs: Index, tier: str) -> list[Target]:
    targets: list[Target] = []
    for n in _sizes(runs, tier):
        run = runs.get((tier, n, STEADY))
        if run is None:
            continue
        targets += [
            Target(
                REQUESTS,
                f"{tier}, steady N={n:,}: Matrix requests ≤ {STEADY_MAX_REQUESTS}",
                str(run.matrix_total),
                run.matrix_total <= STEADY_MAX_REQUESTS,
            ),
            Target(
                REQUESTS,
                f"{tier}, steady N={n:,}: password logins = 0",
                str(run.logins),
                run.logins == 0,
            ),
            Target(
                REQUESTS,
                f"{tier}, steady N={n:,}: new devices = 0",
                str(run.devices_created),
                run.devices_created == 0,
            ),
        ]
    return targets


def big_targets(runs: Index) -> list[Target]:
    fresh = runs.get(("fake", BIG_N, FRESH))
    steady = runs.get(("fake", BIG_N, STEADY))
    rss = fresh.peak_rss_mb if fresh is not None else None
    return [
        _time_target(f"fake, fresh N={BIG_N:,}", fresh, MAX_FRESH_BIG_S),
        Target(
            MEMORY,
            f"fake, fresh N={BIG_N:,}: peak RSS < {MAX_FRESH_BIG_RSS_MB:g} MiB",
            "-" if rss is None else f"{rss:.0f} MiB",
            None if rss is None else rss < MAX_FRESH_BIG_RSS_MB,
        ),
        _time_target(f"fake, steady N={BIG_N:,}", steady, MAX_STEADY_BIG_S),
    ]


def _time_target(label: str, run: Summary | None, limit: float) -> Target:
    name = f"{label}: wall time < {limit:g} s"
    if run is None:
        return Target(TIME, name, "-", None)
    text = f"{run.wall_s:.2f} s"
    if run.server_s is not None:
        client = run.wall_s - run.server_s
        text += f" (client {client:.2f} s + inside the fake's handlers {run.server_s:.2f} s)"
        if run.wall_s >= limit and client < limit:
            text += "; the client's share alone is within the target"
    return Target(TIME, name, text, run.wall_s < limit)


def correctness_targets(runs: Index) -> list[Target]:
    failed = [s for s in runs.values() if not s.ok]
    measured = (
        "all ok" if not failed else "; ".join(f"{s.tier} N={s.n:,} {s.phase}" for s in failed)
    )
    return [Target(CORRECTNESS, "every sync reported ok (no agent failure)", measured, not failed)]


def evaluate(summaries: Iterable[Summary]) -> list[Target]:
    runs = index(summaries)
    targets: list[Target] = []
    for tier in _tiers(runs):
        targets += fresh_targets(runs, tier) + steady_targets(runs, tier)
    return targets + big_targets(runs) + correctness_targets(runs)


def exit_code(targets: Iterable[Target]) -> int:
    """1 if a request-count (or correctness) target is missed, 2 if only time/memory, else 0."""
    missed = [t for t in targets if t.met is False]
    if any(t.kind in (REQUESTS, CORRECTNESS) for t in missed):
        return 1
    return 2 if missed else 0
