"""Command line of the benchmark: runs the tiers, writes results.md, sets the exit code."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from benchmarks.fake_tier import child_main, run_fake_tier
from benchmarks.measure import Measurement, summarise
from benchmarks.report import RunInfo, now_utc, render
from benchmarks.targets import evaluate, exit_code

RESULTS = Path(__file__).resolve().parent / "results.md"
# (N, repetitions): each repetition is a fresh child process; N=0 is the fixed overhead.
FAKE_PLAN = ((0, 1), (100, 5), (1_000, 3), (10_000, 1))
QUICK_FAKE_PLAN = ((0, 1), (100, 5), (1_000, 3))
SYNAPSE_SIZES = (0, 50, 200)
LIMITS_SIZES = (30, 50)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Benchmark SyncService against the in-process fake and a local Synapse.",
    )
    parser.add_argument("--quick", action="store_true", help="fake tier at N=100 and 1,000 only")
    parser.add_argument("--skip-synapse", action="store_true", help="skip the real-Synapse tier")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown report path")
    parser.add_argument(
        "--keep-respx-log",
        action="store_true",
        help="keep respx's record of every request (test-only memory) in the fake tier",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed for one fake-tier child"
    )
    parser.add_argument(
        "--default-limits",
        action="store_true",
        help="only tier 3: first syncs on a Synapse with its default rate limits",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=LIMITS_SIZES,
        help="comma-separated N for --default-limits (default 30,50)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per N for --default-limits (default 1)"
    )
    parser.add_argument("--child-fake", type=int, metavar="N", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def command_line(argv: Sequence[str]) -> str:
    return " ".join(["python benchmarks/run.py", *argv])


def run_tiers(args: argparse.Namespace) -> list[Measurement]:
    plan = QUICK_FAKE_PLAN if args.quick else FAKE_PLAN
    print(f"fake tier: {', '.join(f'N={n} x{reps}' for n, reps in plan)}", flush=True)
    runs = run_fake_tier(plan, args.timeout, args.keep_respx_log)
    if not args.skip_synapse:
        from benchmarks.synapse_tier import measure_synapse

        print(f"synapse tier: N={', '.join(map(str, SYNAPSE_SIZES))}", flush=True)
        runs += anyio.run(measure_synapse, SYNAPSE_SIZES)
    return runs


def group(runs: Sequence[Measurement]) -> list[list[Measurement]]:
    groups: dict[tuple[str, int, str], list[Measurement]] = {}
    for run in runs:
        groups.setdefault((run.tier, run.n, run.phase), []).append(run)
    return list(groups.values())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    if args.child_fake is not None:
        return child_main(args.child_fake, args.keep_respx_log)
    if args.default_limits:
        return run_default_limits(args, argv)
    started, began = now_utc(), time.perf_counter()
    runs = run_tiers(args)
    summaries = [summarise(g) for g in group(runs)]
    targets = evaluate(summaries)
    notes = ["`--quick`: the N=10,000 run was skipped."] if args.quick else []
    info = RunInfo(command_line(argv), started, time.perf_counter() - began, notes)
    report = render(summaries, targets, info) + _kept(args.output)
    args.output.write_text(report, encoding="utf-8")
    code = exit_code(targets)
    for target in targets:
        if target.met is False:
            print(f"MISSED ({target.kind}): {target.name}: {target.measured}", flush=True)
    print(f"wrote {args.output}; exit {code}", flush=True)
    return code


def _kept(path: Path) -> str:
    """The sections other runs wrote (default limits, drift), kept as they are."""
    from benchmarks import drift_tier
    from benchmarks.limits_report import kept_section

    kept = kept_section(path) + kept_section(path, drift_tier.BEGIN, drift_tier.END)
    return "\n" + kept if kept else ""


def run_default_limits(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Tier 3 alone; its section of the report is replaced, the rest kept."""
    from benchmarks.limits_report import section, verdict, with_section
    from benchmarks.limits_tier import measure_limits

    started, began = now_utc(), time.perf_counter()
    print(f"default-limits tier: N={', '.join(map(str, args.sizes))} x{args.repeats}", flush=True)
    runs = measure_limits(args.sizes, args.repeats)
    info = RunInfo(command_line(argv), started, time.perf_counter() - began)
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(with_section(old, section(runs, info)), encoding="utf-8")
    text = verdict(runs)
    print(f"{text}\nwrote {args.output}", flush=True)
    return 0 if text.startswith("**Met") else 1
