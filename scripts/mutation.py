"""Mutation testing per module group, its report, and the ratchet that keeps the score up.

    python scripts/mutation.py run [--group A|B|all] [--module app/x.py ...] [--max-children N]
                                   [--nice N]
    python scripts/mutation.py record --module app/x.py --command "..."  # after your own
                                           # `mutmut run`: record what mutants/ holds
    python scripts/mutation.py report      # docs/mutation.md from docs/mutation-scores.json
    python scripts/mutation.py check       # exit 1 when the score fell below the recorded one
    python scripts/mutation.py sample --check  # CI: a random sample over all of app/, against
                                               # the floor (scripts/mutation_sample.py)
    python scripts/mutation.py changed     # every mutant of the functions your change touched

`run` runs mutmut (pinned in the `mutation` extra; configured in pyproject.toml's
`[tool.mutmut]`) on one group at a time, on asyncio only, `-m "not contract"`, then merges the
per-module counts it measured into docs/mutation-scores.json and rewrites docs/mutation.md.
Modules not measured in a run keep their recorded counts (and their date and command).

`check` compares the overall score of the modules measured in mutants/ with the recorded score
of the same modules; CI runs it after `run` (.github/workflows/mutation.yml).

Group A: app/sync and app/state. Group B: the rest of app/ but the test kit and the demo.
Equivalent mutants (no test can tell them apart from the original) are listed, each with the
argument why, in docs/mutation-equivalent.toml; the report shows them and a score without them,
next to the raw score. The ratchet uses the raw score.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / "docs" / "mutation-scores.json"
EQUIVALENT = ROOT / "docs" / "mutation-equivalent.toml"
REPORT = ROOT / "docs" / "mutation.md"
MUTANTS = ROOT / "mutants"
EXCLUDED = ("app/testing/", "app/testing/demo.py")
GROUPS = {"A": ("app/sync/", "app/state/")}

# mutmut's exit codes (mutmut/stats.py), sorted into what the score counts.
KILLED = {1, 3}
TIMEOUT = {36, 24, -24, 152, 255}
SEGFAULT = {-11, -9}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34, 37}  # skipped, or refused by a type checker (none is configured)


@dataclass
class Counts:
    """One module's mutants by outcome. A mutant no test covers counts against the score."""

    killed: int = 0
    timeout: int = 0
    survived: int = 0
    no_tests: int = 0
    suspicious: int = 0
    skipped: int = 0
    not_checked: int = 0

    def add(self, code: int | None) -> None:
        if code is None:
            self.not_checked += 1
        elif code in KILLED or code in SEGFAULT:
            self.killed += 1
        elif code in TIMEOUT:
            self.timeout += 1
        elif code in SURVIVED:
            self.survived += 1
        elif code in NO_TESTS:
            self.no_tests += 1
        elif code in SKIPPED:
            self.skipped += 1
        else:
            self.suspicious += 1

    @property
    def detected(self) -> int:
        return self.killed + self.timeout

    @property
    def scored(self) -> int:
        return self.detected + self.survived + self.no_tests + self.suspicious

    def plus(self, other: Counts) -> Counts:
        mine, theirs = asdict(self), asdict(other)
        return Counts(**{key: mine[key] + theirs[key] for key in mine})


def undetected(code: int | None) -> bool:
    """Survived, reached by no test, or suspicious: what counts against the score."""
    return code is not None and code not in KILLED | SEGFAULT | TIMEOUT | SKIPPED


def score(counts: Counts, equivalent: int = 0) -> float:
    total = counts.scored - equivalent
    return 100.0 * counts.detected / total if total else 100.0


def module_files() -> list[str]:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*.py"))
    return [f for f in files if not f.startswith(EXCLUDED)]


def group_of(path: str) -> str:
    return "A" if path.startswith(GROUPS["A"]) else "B"


def mutant_glob(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".") + ".*"


def measured(paths: list[str]) -> dict[str, tuple[Counts, list[tuple[str, int | None]]]]:
    """The counts and per-mutant exit codes mutmut left in mutants/ for `paths`."""
    found = {}
    for path in paths:
        meta = MUTANTS / f"{path}.meta"
        if not meta.exists():
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        counts = Counts()
        for code in codes.values():
            counts.add(code)
        found[path] = (counts, sorted(codes.items()))
    return found


def run_mutmut(paths: list[str], max_children: int, nice: int) -> str:
    """One `mutmut run` over `paths`; returns the command as run."""
    # Tests that start `python -m app` run the original code in their child: mutated code
    # cannot run outside mutants/ (its trampoline looks for this project's mutmut settings in
    # the child's working directory), and each such scenario has an in-process twin.
    env = dict(os.environ, ANYIO_BACKENDS="asyncio")
    command = ["mutmut", "run", "--max-children", str(max_children)]
    command += [mutant_glob(p) for p in paths]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    shown = "ANYIO_BACKENDS=asyncio " + shlex.join(command)
    print(f"$ {shown}", flush=True)
    # mutmut imports before it writes mutants/: a directory missing then is cached by the
    # import system as one to skip, and no test can import `app` (a fresh checkout fails so).
    MUTANTS.mkdir(exist_ok=True)
    subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603 - fixed argv
    return shown


def has_mutants(path: str) -> bool:
    """False for a module mutmut found nothing to mutate in (as far as mutants/ knows)."""
    meta = MUTANTS / f"{path}.meta"
    return not meta.exists() or bool(json.loads(meta.read_text())["exit_code_by_key"])


def load_scores() -> dict[str, dict[str, object]]:
    if not SCORES.exists():
        return {}
    data: dict[str, dict[str, object]] = json.loads(SCORES.read_text())["modules"]
    return data


def committed_scores() -> dict[str, dict[str, object]]:
    """The scores as committed (HEAD), whatever a `run` since then wrote into the file."""
    text = git("show", f"HEAD:{SCORES.relative_to(ROOT)}")
    if text is None:
        return {}
    data: dict[str, dict[str, object]] = json.loads(text)["modules"]
    return data


def git(*args: str) -> str | None:
    result = subprocess.run(  # noqa: S603 - git with fixed arguments
        ["git", *args],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def save_scores(modules: dict[str, dict[str, object]]) -> None:
    ordered = dict(sorted(modules.items()))
    data = {"overall": round(score(sum_counts(ordered)), 1), "modules": ordered}
    SCORES.parent.mkdir(exist_ok=True)
    SCORES.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def counts_of(entry: dict[str, object]) -> Counts:
    raw = entry["counts"]
    assert isinstance(raw, dict)
    return Counts(**raw)


def sum_counts(modules: dict[str, dict[str, object]]) -> Counts:
    total = Counts()
    for entry in modules.values():
        total = total.plus(counts_of(entry))
    return total


def git_commit() -> str:
    return (git("rev-parse", "--short", "HEAD") or "unknown").strip()


def known_modules(paths: list[str]) -> bool:
    unknown = sorted(set(paths) - set(module_files()))
    if unknown:
        print(f"not mutated (test kit, demo or no such file): {', '.join(unknown)}")
    return not unknown


def command_run(args: argparse.Namespace) -> int:
    if args.module:
        if not known_modules(args.module):
            return 2
        batches = [args.module]
    else:
        groups = ["A", "B"] if args.group == "all" else [args.group]
        batches = [[p for p in module_files() if group_of(p) == g] for g in groups]
    if shutil.which("mutmut") is None:
        print("mutmut is not installed: pip install -e '.[mutation]' (mutmut 3.8.1)")
        return 2
    for paths in batches:  # one group at a time: each batch is recorded as soon as it is done
        shown = run_mutmut(paths, args.max_children, args.nice)
        record(paths, shown)
    return 0


def record(paths: list[str], shown: str) -> None:
    modules = load_scores()
    stamp = {"commit": git_commit(), "date": dt.date.today().isoformat(), "command": shown}
    for path, (counts, codes) in measured(paths).items():
        if counts.not_checked:
            print(f"{path}: {counts.not_checked} mutants not checked (interrupted?); not recorded")
            continue
        missed = sorted(name for name, code in codes if undetected(code))
        modules[path] = {
            "group": group_of(path),
            "counts": asdict(counts),
            "undetected": missed,
            **stamp,
        }
    save_scores(modules)
    write_report(modules)


def command_check(_: argparse.Namespace) -> int:
    """The ratchet: this run's score over the modules it measured against the committed one."""
    recorded = committed_scores()
    # A module with mutants left unchecked (a run cut short) is not compared.
    fresh = {p: m for p, m in measured(module_files()).items() if not m[0].not_checked}
    common = sorted(set(recorded) & set(fresh))
    if not common:
        print("nothing to compare: run `scripts/mutation.py run` first")
        return 2
    now = Counts()
    before = Counts()
    for path in common:
        now = now.plus(fresh[path][0])
        before = before.plus(counts_of(recorded[path]))
        was, is_now = score(counts_of(recorded[path])), score(fresh[path][0])
        if is_now < was:
            print(f"  lower: {path} {is_now:.1f}% (recorded {was:.1f}%)")
    print(
        f"mutation score over {len(common)} modules: {score(now):.1f}% "
        f"(recorded: {score(before):.1f}%)"
    )
    new = sorted(set(fresh) - set(recorded))
    if new:
        print(f"measured, not recorded yet: {', '.join(new)}")
    if round(score(now), 1) < round(score(before), 1):
        print(
            "the mutation score dropped below the recorded one: add tests that kill the new "
            "survivors (`mutmut results`), or argue them in docs/mutation-equivalent.toml"
        )
        return 1
    return 0


def equivalents() -> dict[str, str]:
    if not EQUIVALENT.exists():
        return {}
    import tomllib  # Python 3.11+; the sampler imports this module on 3.10 too

    data = tomllib.loads(EQUIVALENT.read_text(encoding="utf-8"))
    return {entry["name"]: " ".join(entry["reason"].split()) for entry in data.get("mutant", [])}


def write_report(modules: dict[str, dict[str, object]]) -> None:
    from mutation_report import render  # scripts/mutation_report.py

    mutated = [p for p in module_files() if has_mutants(p)]
    REPORT.write_text(render(modules, equivalents(), mutated), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}")


def command_record(args: argparse.Namespace) -> int:
    if not known_modules(args.module):
        return 2
    record(args.module, args.ran)
    return 0


def command_report(_: argparse.Namespace) -> int:
    write_report(load_scores())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run mutmut and record the per-module scores")
    run.add_argument("--group", choices=["A", "B", "all"], default="all")
    run.add_argument("--module", action="append", help="a file under app/ (repeatable)")
    run.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    run.add_argument("--nice", type=int, default=0, help="run mutmut under `nice -n N`")
    record_ = commands.add_parser("record", help="record what mutants/ holds for modules")
    record_.add_argument("--module", action="append", required=True)
    record_.add_argument(
        "--command", dest="ran", required=True, help="the mutmut command that was run"
    )
    commands.add_parser("report", help="rewrite docs/mutation.md from the recorded scores")
    commands.add_parser("check", help="fail when the score dropped below the recorded one")
    sample = commands.add_parser("sample", help="score a random sample of all of app/")
    sample.add_argument("--count", type=int, default=300)
    sample.add_argument("--seed", help="default: the commit hash")
    sample.add_argument("--budget", type=float, default=20.0, help="minutes, default 20")
    sample.add_argument("--check", action="store_true", help="exit 1 below the floor")
    sample.add_argument("--raise-floor", action="store_true", help="record a higher floor")
    sample.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    changed = commands.add_parser("changed", help="every mutant of the functions changed")
    changed.add_argument("--base", default="origin/main", help="git ref, default origin/main")
    changed.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.command in ("sample", "changed"):
        import mutation_sample  # scripts/mutation_sample.py

        if args.command == "changed":
            return mutation_sample.command_changed(args.base, args.max_children)
        return mutation_sample.command_sample(
            args.count, args.seed, args.budget, args.check, args.raise_floor, args.max_children
        )
    handler = {
        "run": command_run,
        "record": command_record,
        "report": command_report,
        "check": command_check,
    }
    return handler[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
