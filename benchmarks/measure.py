"""One measured sync, as a plain value that crosses process boundaries as JSON."""

from __future__ import annotations

import resource
import statistics
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

FRESH = "fresh"
STEADY = "steady"


@dataclass
class Measurement:
    """What one sync cost. `devices_created` and `logins` come from the server side."""

    tier: str
    n: int
    phase: str
    wall_s: float
    matrix: dict[str, int]
    letta: dict[str, int]
    logins: int
    devices_created: int
    peak_rss_mb: float | None = None
    start_rss_mb: float | None = None
    server_s: float | None = None
    ok: bool = True
    failures: list[str] = field(default_factory=list)

    @property
    def matrix_total(self) -> int:
        return sum(self.matrix.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(**data)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Summary:
    """The median of several runs of the same (tier, n, phase)."""

    tier: str
    n: int
    phase: str
    runs: int
    wall_s: float
    wall_min: float
    wall_max: float
    matrix: dict[str, int]
    matrix_total: int
    letta: dict[str, int]
    logins: int
    devices_created: int
    peak_rss_mb: float | None
    start_rss_mb: float | None
    server_s: float | None
    counts_stable: bool
    ok: bool
    failures: list[str]


def _median_int(values: list[int]) -> int:
    return int(statistics.median_low(values))


def _median_opt(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarise(runs: list[Measurement]) -> Summary:
    """Medians over `runs`, which all share tier, n and phase."""
    first = runs[0]
    kinds = sorted({kind for run in runs for kind in run.matrix})
    letta_kinds = sorted({kind for run in runs for kind in run.letta})
    walls = [run.wall_s for run in runs]
    signatures = {tuple(sorted(run.matrix.items())) for run in runs}
    return Summary(
        tier=first.tier,
        n=first.n,
        phase=first.phase,
        runs=len(runs),
        wall_s=statistics.median(walls),
        wall_min=min(walls),
        wall_max=max(walls),
        matrix={k: _median_int([run.matrix.get(k, 0) for run in runs]) for k in kinds},
        matrix_total=_median_int([run.matrix_total for run in runs]),
        letta={k: _median_int([run.letta.get(k, 0) for run in runs]) for k in letta_kinds},
        logins=_median_int([run.logins for run in runs]),
        devices_created=_median_int([run.devices_created for run in runs]),
        peak_rss_mb=_median_opt([run.peak_rss_mb for run in runs]),
        start_rss_mb=_median_opt([run.start_rss_mb for run in runs]),
        server_s=_median_opt([run.server_s for run in runs]),
        counts_stable=len(signatures) == 1,
        ok=all(run.ok for run in runs),
        failures=sorted({f for run in runs for f in run.failures})[:10],
    )
