"""A work-around for mutmut 3.8.1's stats run, installed by tests/conftest.py.

mutmut records which mutated functions each test reached in one set, `state()._stats`, and
iterates it in its `pytest_runtest_teardown` hook. A function called meanwhile by a thread the
test left running (an HTTP server's, say) adds to that set during the iteration:
`RuntimeError: Set changed size during iteration`, and the whole mutation run stops. The set
below iterates over a copy, taken in one C call (atomic under the GIL).

Upstream fix: the hook should iterate `list(state()._stats)` (or swap the set out under a lock).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


class SnapshotSet(set[str]):
    def __iter__(self) -> Iterator[str]:
        return iter(set.copy(self))


def install_under_mutmut_stats() -> bool:
    """Swap mutmut's set for a `SnapshotSet` when this is mutmut's stats run."""
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return False
    try:
        from mutmut.state import state
    except ImportError:
        return False
    current = state()
    current._stats = SnapshotSet(current._stats)
    return True


def original_source(root: Path) -> Path:
    """The project's own sources: under mutmut, tests run in its copy (`mutants/`), whose
    modules hold every mutant's text too. Tests that read source text read the original."""
    return root.parent if root.name == "mutants" else root
