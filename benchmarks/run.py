"""Benchmark entry point: `python benchmarks/run.py [--quick] [--skip-synapse]`.

Writes benchmarks/results.md. Exit 0: every measured target met; 1: a request-count target
missed or a sync failed; 2: only a time or memory target missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.cli import main

    raise SystemExit(main())
