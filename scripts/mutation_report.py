"""docs/mutation.md from the recorded per-module counts (scripts/mutation.py writes it)."""

from __future__ import annotations

from mutation import Counts, counts_of, score, sum_counts

HEADER = """\
# Mutation testing

Written by `python scripts/mutation.py` from `docs/mutation-scores.json`; do not edit by hand.

## The score CI measures: a sample over all of `app/`

Every `.ci/run` (and the GitHub workflow's `mutation-sample` job) runs

    python scripts/mutation.py sample --count 300 --budget 20 --check

mutmut generates every mutant of `app/` (without the test kit), the script draws 300 of them
uniformly with the commit hash as the seed (so no fixed sample can be tuned to), runs them on
the unit tiers (`-m "not contract and not child_process"`, asyncio, without the tests that
read the source as text), and prints the score with its 95% Wilson interval, overall and per
package, then the undetected mutants by name (`mutmut show NAME` shows each change). Code that
runs at import (a class body, `__init_subclass__`) cannot be killed: mutmut picks the mutant
after the modules are imported. It fails when the interval's lower bound is below the
floor in `docs/mutation-floor.json`; `--raise-floor` records a higher one, never a lower one.
Log calls, help text and metric descriptions are not mutated (`do_not_mutate_patterns`,
`# pragma: no mutate`). For your own check:

    python scripts/mutation.py sample --seed anything   # another sample
    python scripts/mutation.py changed --base origin/main  # every mutant of the functions
                                                           # your change touched
    python scripts/mutation.py run --module app/sync/decide.py  # one whole module

## Per-module scores recorded by full runs

How it is measured: mutmut 3.8.1 (the `mutation` extra), configured in `pyproject.toml`
(`[tool.mutmut]`), on `app/` without the test kit (`app/testing/`) and the demo, one module
group at a time (A: `app/sync/` and `app/state/`; B: the rest), the unit tiers only
(`-m "not contract"`), on asyncio only (`ANYIO_BACKENDS=asyncio`). Tests that start
`python -m app` in a child process run the original code there (mutated code cannot run
outside `mutants/`); each such scenario has an in-process twin that mutmut does see.

**Score** = mutants detected (a test failed or timed out) / mutants scored. A mutant that no
test even reaches ("no tests") counts as undetected. **Without equivalents** leaves out the
surviving mutants listed below as equivalent, each with the argument why no test can tell it
from the original. The CI job `mutation` fails when the raw score of the modules it measured
falls below the score recorded here for the same modules (`python scripts/mutation.py check`).
"""

COLUMNS = (
    "| module | group | mutants | killed | timeout | survived | no tests "
    "| score | without equivalents | measured |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
)


def render(
    modules: dict[str, dict[str, object]], equivalent: dict[str, str], all_modules: list[str]
) -> str:
    parts = [HEADER, _summary(modules, equivalent), _table(modules, equivalent)]
    parts.append(_not_measured(modules, all_modules))
    parts.append(_commands(modules))
    parts.append(_undetected(modules, equivalent))
    parts.append(_equivalents(equivalent))
    return "\n".join(part for part in parts if part)


def _names(value: object) -> list[str]:
    return [str(name) for name in value] if isinstance(value, list) else []


def _equivalent_in(entry: dict[str, object], equivalent: dict[str, str]) -> int:
    """How many of the module's undetected mutants are argued equivalent."""
    return sum(1 for name in _names(entry.get("undetected")) if name in equivalent)


def _summary(modules: dict[str, dict[str, object]], equivalent: dict[str, str]) -> str:
    lines = ["## Overall", ""]
    for label, chosen in (
        ("all measured modules", modules),
        *(
            (f"group {g}", {p: e for p, e in modules.items() if e["group"] == g})
            for g in ("A", "B")
        ),
    ):
        if not chosen:
            lines.append(f"- {label}: not measured")
            continue
        total = sum_counts(chosen)
        known = sum(_equivalent_in(e, equivalent) for e in chosen.values())
        lines.append(
            f"- {label}: **{score(total):.1f}%** raw, {score(total, known):.1f}% without "
            f"{known} equivalent mutants ({total.scored} mutants, {len(chosen)} modules)"
        )
    return "\n".join(lines) + "\n"


def _row(path: str, entry: dict[str, object], counts: Counts, known: int) -> str:
    return (
        f"| `{path}` | {entry['group']} | {counts.scored} | {counts.killed} | {counts.timeout} "
        f"| {counts.survived} | {counts.no_tests} | {score(counts):.1f}% "
        f"| {score(counts, known):.1f}% | {entry['date']} `{entry['commit']}` |"
    )


def _table(modules: dict[str, dict[str, object]], equivalent: dict[str, str]) -> str:
    rows = [
        _row(path, entry, counts_of(entry), _equivalent_in(entry, equivalent))
        for path, entry in sorted(modules.items())
    ]
    return "## Per module\n\n" + COLUMNS + "\n".join(rows) + "\n"


def _not_measured(modules: dict[str, dict[str, object]], all_modules: list[str]) -> str:
    missing = [p for p in all_modules if p not in modules]
    if not missing:
        return ""
    listed = "\n".join(f"- `{p}`" for p in missing)
    return f"## Not measured yet\n\nThese modules have no recorded run:\n\n{listed}\n"


def _commands(modules: dict[str, dict[str, object]]) -> str:
    used = sorted({str(entry["command"]) for entry in modules.values()})
    if not used:
        return ""
    listed = "\n".join(f"    {command}" for command in used)
    return (
        "## Commands\n\nThe recorded counts come from these runs (from the repository root, "
        "after `pip install -e '.[mutation]'`; `scripts/mutation.py run` prints the same):\n\n"
        f"{listed}\n"
    )


def _undetected(modules: dict[str, dict[str, object]], equivalent: dict[str, str]) -> str:
    names = [
        name
        for entry in modules.values()
        for name in _names(entry.get("undetected"))
        if name not in equivalent
    ]
    if not names:
        return ""
    listed = "\n".join(f"- `{name}`" for name in sorted(names))
    return (
        "## Undetected, not argued equivalent\n\nWork left: a test that kills each, or an "
        "argument in `docs/mutation-equivalent.toml` (`mutmut show NAME` prints the change)."
        f"\n\n{listed}\n"
    )


def _equivalents(equivalent: dict[str, str]) -> str:
    text = "## Equivalent mutants\n\n"
    if not equivalent:
        return text + "None argued yet.\n"
    entries = [f"- `{name}`: {reason}" for name, reason in sorted(equivalent.items())]
    text += (
        "Each survived, and no test can kill it because the program behaves the same "
        "(`mutmut show NAME` prints the change). They stay in the raw score.\n\n"
    )
    return text + "\n".join(entries) + "\n"
