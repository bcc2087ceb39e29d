"""The kit's pytest plugin, as a bridge meets it: installed, with no conftest and no ini file."""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_project import run_pytest

from app.testing.plugin import BACKENDS, _backend_param

BRIDGE_TESTS = """
import httpx
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def test_the_fixtures_share_one_world(
    sync_harness, fake_homeserver, fake_letta, fake_router
):
    assert fake_homeserver is sync_harness.homeserver and fake_letta is sync_harness.letta
    fake_letta.add_agent("Meridian")
    report = await sync_harness.sync()
    assert report.ok and fake_homeserver.room_ids()


async def test_a_bridge_route_on_the_router(sync_harness, fake_router):
    fake_router.get("http://bridge.localhost/health").respond(200, json={"ok": True})
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake_router.async_handler)) as c:
        answer = await c.get("http://bridge.localhost/health")
        versions = await c.get(sync_harness.homeserver.base_url + "/_matrix/client/versions")
    assert answer.json() == {"ok": True} and versions.status_code == 200


def test_a_plain_test_in_the_module_runs_once(fake_homeserver):
    assert fake_homeserver.room_ids() == []
"""


@pytest.mark.child_process  # a pytest or python of its own
def test_fixtures_and_marker_work_with_no_conftest(tmp_path: Path) -> None:
    run = run_pytest(tmp_path / "bridge", {"test_bridge.py": BRIDGE_TESTS})

    assert run.returncode == 0, run.output
    expected = {
        f"test_bridge.py::{name}[{backend}]"
        for name in ("test_the_fixtures_share_one_world", "test_a_bridge_route_on_the_router")
        for backend in BACKENDS
    } | {"test_bridge.py::test_a_plain_test_in_the_module_runs_once"}
    assert run.passed() == expected, run.output


@pytest.mark.parametrize("old_line", ["app.testing.fixtures", "app.testing.plugin"])
@pytest.mark.child_process  # a pytest or python of its own
def test_an_old_pytest_plugins_line_does_not_load_the_plugin_twice(
    tmp_path: Path, old_line: str
) -> None:
    files = {
        "conftest.py": f"pytest_plugins = [{old_line!r}]\n",
        "test_bridge.py": BRIDGE_TESTS,
    }
    run = run_pytest(tmp_path / "bridge", files)

    assert run.returncode == 0, run.output
    assert len(run.passed()) == 2 * len(BACKENDS) + 1, run.output


def test_a_missing_backend_is_skipped_with_the_reason() -> None:
    param = _backend_param("no_such_event_loop")

    assert [mark.kwargs["reason"] for mark in param.marks] == [
        "anyio backend 'no_such_event_loop' is not installed (pip install no_such_event_loop)"
    ]
    assert _backend_param("trio").marks == ()


SYNAPSE_TEST = """
def test_needs_a_real_homeserver(synapse):
    assert synapse.base_url.startswith("http://127.0.0.1:")
"""


@pytest.mark.parametrize(
    ("require", "outcome"), [("", "SKIPPED"), ("1", "ERROR")], ids=["skip", "require"]
)
@pytest.mark.child_process  # a pytest or python of its own
def test_the_synapse_fixture_without_synapse_says_why(
    tmp_path: Path, require: str, outcome: str
) -> None:
    no_synapse = {"SYNAPSE_PYTHON": str(tmp_path / "no-python"), "REQUIRE_SYNAPSE": require}
    run = run_pytest(tmp_path / "bridge", {"test_real.py": SYNAPSE_TEST}, env=no_synapse)

    assert run.outcomes == {"test_real.py::test_needs_a_real_homeserver": outcome}, run.output
    assert "matrix-synapse is not installed" in run.output
    assert "pip install 'letta-matrix-sync[contract]'" in run.output
    assert (run.returncode == 0) == (outcome == "SKIPPED")
