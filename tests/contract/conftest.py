"""Contract tier: a real Synapse on 127.0.0.1, started once per test session.

The ``synapse`` fixture is the kit's own (app.testing.plugin), the one bridge authors get: it
skips when matrix-synapse is missing and fails instead under ``REQUIRE_SYNAPSE=1`` (CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.contract)
