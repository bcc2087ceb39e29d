"""Contract tier: a real Synapse on 127.0.0.1, started by the test run itself.

The ``synapse`` fixture is the kit's own (app.testing.plugin), the one bridge authors get: it
skips when matrix-synapse is missing and fails instead under ``REQUIRE_SYNAPSE=1`` (CI). The
production-shaped variants below start Synapses of their own the same way.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from letta_real.launch import default_letta_python, letta_server
from letta_real.stand_in_model import MODEL, StandInModel
from letta_targets import RealTarget

from app.cli import main
from app.identity.registration import AppserviceRegistration, load_registration
from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.plugin import require_synapse
from app.testing.synapse import SynapseServer
from app.testing.synapse.appservice import AppserviceSynapse

from worlds import AS_ADMIN_PREFIX, SynapseWorld

AS_BOT = "asbot"
REAL_LETTA_TOKEN = "real-letta-test-password"

_HERE = Path(__file__).resolve().parent

# The contract tier runs on asyncio: every behaviour is proven equal on both backends on the
# fakes, and a real server doubles the tier's time. test_trio_smoke_synapse.py runs whole syncs
# on trio against Synapse; CONTRACT_ANYIO_BACKENDS=asyncio,trio runs the whole tier on both.
CONTRACT_BACKENDS = [
    backend.strip()
    for backend in os.environ.get("CONTRACT_ANYIO_BACKENDS", "asyncio").split(",")
    if backend.strip()
]


@pytest.fixture(params=CONTRACT_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.contract)


@pytest.fixture
def synapse_world(synapse: SynapseServer, tmp_path: Path) -> Iterator[SynapseWorld]:
    """A fresh bot, admin and data directory on the shared Synapse, and a fake Letta on HTTP."""
    letta = FakeLetta()
    with LettaHTTPServer(letta.handle) as server:
        yield SynapseWorld(synapse, letta, server.base_url, tmp_path / "data")


@pytest.fixture
def synapse_default_limits(tmp_path: Path) -> Iterator[SynapseServer]:
    """Synapse with every rate limiter at its default, as a stock production server.

    One per test: its buckets start full (it starts in about 2 s).
    """
    python = require_synapse()
    path = tmp_path / "synapse-limits"
    with SynapseServer(path, python=python, default_rate_limits=True) as server:
        yield server


@pytest.fixture(scope="session")
def synapse_to_restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A Synapse of its own for tests that stop and start it."""
    python = require_synapse()
    with SynapseServer(tmp_path_factory.mktemp("synapse-restart"), python=python) as server:
        yield server


def write_registration(path: Path, server_name: str) -> AppserviceRegistration:
    """The registration as an operator makes it: the library's own command, then one more
    namespace entry, so that every test world can have an admin of its own."""
    env = {"MATRIX_USERNAME": AS_BOT, "MATRIX_ADMIN_USERNAME": f"{AS_ADMIN_PREFIX}0"}
    argv = ["registration", "--server-name", server_name, "--output", str(path)]
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, env=env, out=out, err=err) == 0, err.getvalue()
    data = yaml.safe_load(path.read_text())
    data["namespaces"]["users"].append(
        {"exclusive": True, "regex": f"@{AS_ADMIN_PREFIX}[0-9a-f]{{8}}:{server_name}$"}
    )
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_registration(path)


@pytest.fixture(scope="session")
def appservice_synapse(
    synapse: SynapseServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppserviceSynapse, AppserviceRegistration]]:
    """A second Synapse as production runs one: this library's appservice registration
    loaded, `enable_registration: false` and Synapse's default rate limits.

    (It asks for `synapse` only for its check that matrix-synapse is installed.)
    """
    directory = tmp_path_factory.mktemp("synapse-appservice")
    registration = write_registration(directory / "registration.yaml", synapse.server_name)
    with AppserviceSynapse(directory / "server", registration.path) as server:
        yield server, registration


@pytest.fixture
def appservice_world(
    appservice_synapse: tuple[AppserviceSynapse, AppserviceRegistration], tmp_path: Path
) -> Iterator[SynapseWorld]:
    """A fresh admin and data directory in appservice mode on the production-shaped Synapse."""
    server, registration = appservice_synapse
    letta = FakeLetta()
    with LettaHTTPServer(letta.handle) as http:
        yield SynapseWorld(server, letta, http.base_url, tmp_path / "data", registration)


@pytest.fixture(scope="session")
def real_letta() -> Iterator[RealTarget]:
    """A real Letta 0.16.8 on 127.0.0.1 (its own PostgreSQL with pgvector, its own venv made by
    scripts/install_letta.sh), whose agents think with the stand-in model. Skipped when that
    venv is missing, failed instead under REQUIRE_LETTA=1 (CI)."""
    python = default_letta_python()
    if not python.exists():
        message = f"no Letta venv at {python.parent.parent}: run scripts/install_letta.sh"
        if os.environ.get("REQUIRE_LETTA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's tmp_path: its directories are 0700, and PostgreSQL runs as `postgres`.
    prefix = "letta-real-"
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as workdir,
        StandInModel() as model,
        letta_server(
            workdir,
            python,
            password=REAL_LETTA_TOKEN,
            model_base_url=model.base_url,
            sweep_prefix=prefix,
        ) as server,
    ):
        create = {
            "model": f"openai-proxy/{MODEL}",
            "embedding": "letta/letta-free",
            "memory_blocks": [{"label": "human", "value": "a test user"}],
        }
        target = RealTarget(server.base_url, server.password, create)
        yield target
        target.close()
