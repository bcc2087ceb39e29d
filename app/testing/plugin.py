"""The kit's pytest plugin, loaded through the ``pytest11`` entry point of letta-matrix-sync.

``pip install 'letta-matrix-sync[testing]'`` is all a bridge needs: no ``conftest.py`` and no
``pytest_plugins`` line. The plugin offers

- ``sync_harness``: a :class:`~app.testing.harness.SyncHarness` (fake homeserver and fake
  Letta on one respx router, a data directory under ``tmp_path``);
- ``fake_homeserver`` and ``fake_letta``: the harness's two fakes;
- ``fake_router``: the ``respx.MockRouter`` they are mounted on, for the bridge's own routes;
- ``synapse``: a throwaway real Synapse on 127.0.0.1 for the session (opt-in: it starts only
  for a test that asks for it; needs the ``[contract]`` extra, skipped when matrix-synapse is
  missing, a failure instead when ``REQUIRE_SYNAPSE=1``);
- the ``both_backends`` marker: ``pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]``
  runs every async test of a module on asyncio and on trio (trio is skipped, with the reason,
  when it is not installed).

Importing this module needs only pytest: respx is imported when a fixture is first used, so
the plugin stays harmless in an environment that installed the package without ``[testing]``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import respx

    from app.testing.harness import SyncHarness
    from app.testing.homeserver import FakeHomeserver
    from app.testing.letta import FakeLetta
    from app.testing.synapse import SynapseServer

logger = logging.getLogger(__name__)

BACKENDS = ("asyncio", "trio")
BOTH_BACKENDS_MARKER = "both_backends"
REQUIRE_SYNAPSE = "REQUIRE_SYNAPSE"
_NEEDS_CONTRACT_EXTRA = (
    "matrix-synapse is not installed for {python}: pip install 'letta-matrix-sync[contract]' "
    "(or point SYNAPSE_PYTHON at an interpreter that has it)"
)
_NEEDS_TESTING_EXTRA = (
    "the letta-matrix-sync test kit needs respx: pip install 'letta-matrix-sync[testing]'"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{BOTH_BACKENDS_MARKER}: run each anyio test on asyncio and on trio "
        "(letta-matrix-sync kit; trio is skipped with a reason when it is not installed)",
    )


def _backend_param(name: str) -> object:
    if importlib.util.find_spec(name) is None:
        reason = f"anyio backend {name!r} is not installed (pip install {name})"
        return pytest.param(name, marks=pytest.mark.skip(reason=reason), id=name)
    return pytest.param(name, id=name)


def _parametrizes_backend(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if "anyio_backend" in names:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``anyio_backend`` over both backends for the tests under the marker.

    It adds a ``parametrize`` mark rather than calling ``metafunc.parametrize``: pytest then
    leaves the ``anyio_backend`` fixture's own params (anyio's, or a conftest's) alone
    instead of parametrising the same name twice. A test that parametrises ``anyio_backend``
    itself keeps its own choice.
    """
    if metafunc.definition.get_closest_marker(BOTH_BACKENDS_MARKER) is None:
        return
    if "anyio_backend" not in metafunc.fixturenames or _parametrizes_backend(metafunc):
        return  # a plain (not anyio) test in a marked module, or one that chose already
    params = [_backend_param(name) for name in BACKENDS]
    metafunc.definition.add_marker(pytest.mark.parametrize("anyio_backend", params))


@pytest.fixture
def sync_harness(tmp_path: Path) -> SyncHarness:
    """A fake homeserver and a fake Letta on one respx router, and a data directory."""
    if importlib.util.find_spec("respx") is None:
        pytest.fail(_NEEDS_TESTING_EXTRA, pytrace=False)
    from app.testing.harness import SyncHarness

    return SyncHarness(tmp_path / "data")


@pytest.fixture
def fake_homeserver(sync_harness: SyncHarness) -> FakeHomeserver:
    """The harness's :class:`~app.testing.homeserver.FakeHomeserver`."""
    return sync_harness.homeserver


@pytest.fixture
def fake_letta(sync_harness: SyncHarness) -> FakeLetta:
    """The harness's :class:`~app.testing.letta.FakeLetta`."""
    return sync_harness.letta


@pytest.fixture
def fake_router(sync_harness: SyncHarness) -> respx.MockRouter:
    """The ``respx.MockRouter`` both fakes are mounted on; ``sync_harness.transport()`` uses it.

    Add the bridge's own routes here. A route for a URL the fakes serve never fires (the fakes'
    routes match first): ``sync_harness.override(kind, answer)`` takes such an endpoint over.
    """
    return sync_harness.router


def require_synapse() -> str:
    """The Python that runs Synapse; skips the test (fails it under REQUIRE_SYNAPSE=1) when
    matrix-synapse is not installed. For fixtures that start a Synapse of their own."""
    from app.testing.synapse import synapse_available, synapse_python

    python = synapse_python()
    if not synapse_available(python):
        message = _NEEDS_CONTRACT_EXTRA.format(python=python)
        if os.environ.get(REQUIRE_SYNAPSE) == "1":
            pytest.fail(f"{REQUIRE_SYNAPSE}=1 but {message}", pytrace=False)
        pytest.skip(message)
    return python


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A real Synapse on 127.0.0.1, started once per session (about 3 s) and stopped at its end.

    Server name ``localhost``, open registration, every rate limit out of reach, sqlite in a
    temporary directory; ``register_admin`` gives an admin token for its admin API. Shared by
    the whole session, so each test should use its own user names. Skipped, with the reason,
    when matrix-synapse is missing; with ``REQUIRE_SYNAPSE=1`` that is a failure instead.
    """
    from app.testing.synapse import SynapseServer

    python = require_synapse()
    with SynapseServer(tmp_path_factory.mktemp("synapse"), python=python) as server:
        logger.info("Synapse started in %.2fs", server.startup_seconds or 0.0)
        yield server
