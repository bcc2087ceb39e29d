"""Run pytest in a fresh directory, as a bridge's own test suite would run with the kit installed.

The directory has no conftest and no ini file, so everything the tests use comes from the
installed package and the plugin pytest finds through its ``pytest11`` entry point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_RESULT = re.compile(r"^(?P<test>\S+::\S+) (?P<outcome>PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)")


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    outcomes: dict[str, str]  # "file.py::test_name[param]" -> "PASSED", ...

    def passed(self) -> set[str]:
        return {test for test, outcome in self.outcomes.items() if outcome == "PASSED"}


def _clean_env() -> dict[str, str]:
    """The current environment without settings that would change how pytest loads plugins."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.pop("PYTHONPATH", None)
    return env


def run_pytest(
    project: Path, files: dict[str, str], *args: str, env: dict[str, str] | None = None
) -> Run:
    """Write ``files`` into ``project`` and run ``python -m pytest -v`` there (``env`` is
    laid over the current environment)."""
    project.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")
    # hypothesis's plugin is a dev tool of this project, not of a bridge: it only slows startup.
    quiet = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    cmd = [sys.executable, "-m", "pytest", "-v", "-rs", *quiet, *args]
    done = subprocess.run(  # noqa: S603 - the current interpreter, our own arguments
        cmd,
        cwd=project,
        env={**_clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    outcomes = {}
    for line in output.splitlines():
        match = _RESULT.match(line)
        if match is not None:
            outcomes[match.group("test")] = match.group("outcome")
    return Run(done.returncode, output, outcomes)
