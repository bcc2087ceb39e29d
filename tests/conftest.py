"""Shared pytest configuration: every async test runs on asyncio and on trio.

`ANYIO_BACKENDS=trio` (comma-separated) narrows the backends, for a CI matrix job per backend.
"""

from __future__ import annotations

import os

import pytest

BACKENDS = [
    b.strip() for b in os.environ.get("ANYIO_BACKENDS", "asyncio,trio").split(",") if b.strip()
]

pytest_plugins = ["app.testing.plugin"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
