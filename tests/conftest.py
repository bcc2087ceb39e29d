"""Shared pytest configuration: every async test runs on asyncio and on trio.

`ANYIO_BACKENDS=trio` (comma-separated) narrows the backends, for a CI matrix job per backend.
The fixtures of the fakes (`sync_harness`, `fake_homeserver`, ...) come from the kit's plugin,
`app.testing.plugin`, which pytest loads through the package's `pytest11` entry point.
"""

from __future__ import annotations

import os

import pytest

BACKENDS = [
    b.strip() for b in os.environ.get("ANYIO_BACKENDS", "asyncio,trio").split(",") if b.strip()
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
