"""A mutation score over all of `app/` from a uniform random sample of its mutants.

    python scripts/mutation.py sample [--count 300] [--seed TEXT] [--budget MINUTES] [--check]
    python scripts/mutation.py changed [--base REF]   # every mutant of the functions a change
                                                     # touched (a developer's own check)

`sample` lets mutmut generate every mutant of `app/` (without the test kit), draws `--count` of
them with a seed (default: the commit hash, so each commit draws another sample and none can be
tuned to), runs only those, and prints the score with its 95% Wilson interval, per package too.
With `--check` it exits 1 when the interval's lower bound is below the floor recorded in
docs/mutation-floor.json. The floor only rises: `--raise-floor` writes a higher lower bound
there, never a lower one.
"""

from __future__ import annotations

import ast
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mutation import Counts, undetected  # scripts/mutation.py: one reading of mutmut's codes

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
FLOOR = ROOT / "docs" / "mutation-floor.json"

# Generate every mutant, as `mutmut run` does first, without running any test.
_GENERATE = """
import os
from mutmut.__main__ import create_mutants, store_lines_covered_by_tests
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
store_lines_covered_by_tests()
stats = create_mutants(os.cpu_count() or 1)
print(f"{stats.mutated} files mutated")
"""


@dataclass(frozen=True)
class Score:
    detected: int
    scored: int

    @property
    def percent(self) -> float:
        return 100.0 * self.detected / self.scored if self.scored else 100.0

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """The 95% Wilson score interval, in percent: right for proportions near 0 or 1 and
        for samples of a few hundred, where the normal approximation is not."""
        n = self.scored
        if n == 0:
            return 0.0, 100.0
        p = self.detected / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return 100.0 * (centre - half), 100.0 * (centre + half)

    def describe(self) -> str:
        if not self.scored:
            return "no mutant scored"
        low, high = self.interval()
        return (
            f"{self.percent:.1f}% (95% interval {low:.1f}-{high:.1f}%, "
            f"{self.detected}/{self.scored})"
        )


def score_of(codes: dict[str, int | None]) -> Score:
    """Counted as `scripts/mutation.py` counts (`Counts`): a mutant not run is not scored."""
    counts = Counts()
    for code in codes.values():
        counts.add(code)
    return Score(counts.detected, counts.scored)


def generate() -> None:
    """mutants/: every mutant of the configured sources (`[tool.mutmut]`), none run yet."""
    # mutmut imports before it writes mutants/: a directory missing then is cached by the
    # import system as one to skip, and no test can import `app`.
    MUTANTS.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", _GENERATE], cwd=ROOT, check=True)  # noqa: S603


def all_mutants() -> dict[str, int | None]:
    """Every mutant name mutmut generated, with its last exit code (None: not run)."""
    codes: dict[str, int | None] = {}
    for meta in sorted((MUTANTS / "app").rglob("*.py.meta")):
        if "testing" in meta.relative_to(MUTANTS / "app").parts:
            continue
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def draw(names: list[str], count: int, seed: str) -> list[str]:
    """A uniform random sample, the same for the same seed and the same mutants."""
    chooser = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    return sorted(chooser.sample(sorted(names), min(count, len(names))))


def package_of(name: str) -> str:
    """`app.sync.agent.x_f__mutmut_1` -> `app/sync`; a top-level module -> `app (top)`."""
    parts = name.split(".")
    return f"app/{parts[1]}" if len(parts) > 3 else "app (top)"


def run_mutants(names: list[str], max_children: int, budget_s: float) -> bool:
    """Run the named mutants; False when the time budget ran out first."""
    env = dict(os.environ, ANYIO_BACKENDS="asyncio")
    command = ["mutmut", "run", "--max-children", str(max_children), *names]
    try:
        subprocess.run(command, cwd=ROOT, env=env, check=False, timeout=budget_s)  # noqa: S603
    except subprocess.TimeoutExpired:
        return False
    return True


def report(sample: list[str], codes: dict[str, int | None]) -> Score:
    by_package: dict[str, dict[str, int | None]] = defaultdict(dict)
    for name in sample:
        by_package[package_of(name)][name] = codes.get(name)
    for package, of_package in sorted(by_package.items()):
        print(f"  {package:<14} {score_of(of_package).describe()}")
    overall = score_of({name: codes.get(name) for name in sample})
    print(f"mutation score over app/ (sample of {len(sample)}): {overall.describe()}")
    missed = sorted(name for name in sample if undetected(codes.get(name)))
    if missed:
        print("undetected (`mutmut show NAME` shows the change):")
        for name in missed:
            print(f"  {name}")
    return overall


def floor() -> float:
    return float(json.loads(FLOOR.read_text())["lower_bound_floor"]) if FLOOR.exists() else 0.0


def raise_floor(lower: float) -> None:
    """Record a higher floor; a lower one is never written."""
    if lower <= floor():
        print(f"floor stays {floor():.1f}% (this lower bound: {lower:.1f}%)")
        return
    FLOOR.write_text(json.dumps({"lower_bound_floor": round(lower, 1)}, indent=2) + "\n")
    print(f"floor raised to {lower:.1f}%: commit {FLOOR.name}")


def default_seed() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],  # noqa: S607 - git with fixed arguments
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return head.stdout.strip() or str(time.time())


def command_sample(
    count: int, seed: str | None, budget_min: float, check: bool, raise_: bool, max_children: int
) -> int:
    seed = seed or default_seed()
    started = time.monotonic()
    generate()
    sample = draw(list(all_mutants()), count, seed)
    print(f"seed {seed}: {len(sample)} of {len(all_mutants())} mutants", flush=True)
    finished = run_mutants(sample, max_children, budget_min * 60 - (time.monotonic() - started))
    codes = all_mutants()
    overall = report(sample, codes)
    not_run = sum(codes.get(name) is None for name in sample)
    print(f"took {(time.monotonic() - started) / 60:.1f} min")
    if not_run == len(sample):
        print("mutmut ran no mutant of the sample: its output above says why")
        return 2
    if not finished or not_run:
        print(f"the time budget ({budget_min:g} min) ran out with {not_run} mutants not run")
        return 1 if check else 0
    low, _ = overall.interval()
    if raise_:
        raise_floor(low)
    if check and low < floor():
        print(
            f"the lower bound {low:.1f}% is below the floor {floor():.1f}% "
            f"({FLOOR.relative_to(ROOT)}): add tests that kill the undetected mutants above"
        )
        return 1
    return 0


# mutmut names a function's mutants x_<function>__mutmut_<n>, a method's
# xǁ<Class>ǁ<method>__mutmut_<n>, under the module's dotted name.
def touched_functions(base: str) -> dict[str, set[str]]:
    """module path -> names (`f` or `Class.method`) of the functions a change touched."""
    diff = subprocess.run(  # noqa: S603 - git, our arguments
        ["git", "diff", "-U0", base, "--", "app"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines: dict[str, set[int]] = defaultdict(set)
    path = ""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else ""
        hunk = re.match(r"@@ -\S+ \+(\d+)(?:,(\d+))? @@", line)
        if hunk and path.endswith(".py") and "/testing/" not in path:
            start, length = int(hunk.group(1)), int(hunk.group(2) or 1)
            lines[path].update(range(start, start + max(length, 1)))
    return {path: _functions_at(ROOT / path, changed) for path, changed in lines.items()}


def _functions_at(path: Path, changed: set[int]) -> set[str]:
    if not path.exists():
        return set()
    found = set()
    for node in ast.parse(path.read_text()).body:  # mutmut mutates functions and methods
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _spans(
                    item, changed
                ):
                    found.add(f"{node.name}.{item.name}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _spans(node, changed):
            found.add(node.name)
    return found


def _spans(node: ast.FunctionDef | ast.AsyncFunctionDef, changed: set[int]) -> bool:
    return bool(changed & set(range(node.lineno, (node.end_lineno or node.lineno) + 1)))


def mutant_globs(touched: dict[str, set[str]]) -> list[str]:
    globs = []
    for path, functions in sorted(touched.items()):
        module = path.removesuffix(".py").replace("/", ".")
        for function in sorted(functions):
            owner, _, method = function.rpartition(".")
            name = f"x\u01c1{owner}\u01c1{method}" if owner else f"x_{method}"
            globs.append(f"{module}.{name}__mutmut_*")
    return globs


def command_changed(base: str, max_children: int) -> int:
    touched = touched_functions(base)
    globs = mutant_globs(touched)
    if not globs:
        print(f"no function of app/ changed since {base}")
        return 0
    print(f"{len(globs)} functions changed since {base}", flush=True)
    generate()
    names = [name for name in all_mutants() if any(_matches(name, glob) for glob in globs)]
    run_mutants(names, max_children, budget_s=float("inf"))
    overall = report(names, all_mutants())
    return 0 if overall.detected == overall.scored else 1


def _matches(name: str, glob: str) -> bool:
    return name.startswith(glob.removesuffix("*"))
