"""Shared pytest configuration: every async test runs on asyncio and on trio.

`ANYIO_BACKENDS=trio` (comma-separated) narrows the backends, for a CI matrix job per backend.
The fixtures of the fakes (`sync_harness`, `fake_homeserver`, ...) come from the kit's plugin,
`app.testing.plugin`, which pytest loads through the package's `pytest11` entry point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from mutmut_support import install_under_mutmut_stats

from app.testing.postgres import PostgresServer, unavailable_reason

install_under_mutmut_stats()

BACKENDS = [
    b.strip() for b in os.environ.get("ANYIO_BACKENDS", "asyncio,trio").split(",") if b.strip()
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


REQUIRE_POSTGRES = "REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL on 127.0.0.1, started once per session when a test asks for it.

    Skipped with the reason when it cannot start here; `REQUIRE_POSTGRES=1` (CI) fails instead.
    """
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_POSTGRES) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of an empty database of this test's own."""
    return postgres_server.new_database()
