"""`doctor` against real Synapse servers as the contract tier starts them: the production
shape (appservice registration loaded, registration closed, default rate limits) and the
shared test server in password mode; and the misconfigurations an operator makes there."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml

from worlds import SynapseWorld

pytestmark = pytest.mark.anyio


async def doctor(world: SynapseWorld, **env: str) -> tuple[int, dict[str, str]]:
    code, out, err = await anyio.to_thread.run_sync(lambda: world.cli("doctor", **env))
    assert err == [], err
    checks = {}
    for line in out.splitlines()[:-1]:
        name, _, detail = line[6:].partition(": ")
        checks[name] = f"{line[:4].strip()} {detail}"
    return code, checks


def failed(checks: dict[str, str]) -> list[str]:
    return [name for name, line in checks.items() if line.startswith("FAIL")]


async def test_doctor_passes_on_the_production_shaped_synapse_once_the_admin_is_server_admin(
    appservice_world: SynapseWorld,
) -> None:
    world = appservice_world
    world.letta.add_agent("Checked")
    assert (await world.sync()).ok
    code, before = await doctor(world)
    world.make_server_admin(world.admin_id)
    world.letta.add_agent("New")  # a new agent's user is in the namespace too
    fixed, after = await doctor(world)

    assert code == 1 and failed(before) == ["admin is a server admin"], before
    assert fixed == 0 and failed(after) == [], after
    assert after["appservice registration"].startswith("ok loaded by the homeserver")
    assert "3 users" in after["appservice namespace"]


async def test_doctor_names_a_registration_the_homeserver_never_loaded(
    appservice_world: SynapseWorld, tmp_path: Path
) -> None:
    world = appservice_world
    assert world.registration is not None
    data = yaml.safe_load(world.registration.path.read_text())
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump({**data, "as_token": "a-token-synapse-never-saw"}))

    code, checks = await doctor(world, MATRIX_APPSERVICE_REGISTRATION=str(copy))

    assert code == 1 and failed(checks) == ["appservice registration"]
    assert "app_service_config_files" in checks["appservice registration"]


async def test_doctor_fails_password_mode_on_a_homeserver_with_registration_closed(
    appservice_world: SynapseWorld,
) -> None:
    """The production-shaped Synapse has registration closed: password mode cannot make the
    users new agents need."""
    world = appservice_world
    world.letta.add_agent("Needs a user")
    code, checks = await doctor(
        world, MATRIX_APPSERVICE_REGISTRATION="", MATRIX_PASSWORD="some-password"
    )
    assert code == 1 and "registration for new agents" in failed(checks)
    assert "registration is closed" in checks["registration for new agents"]


async def test_doctor_passes_in_password_mode_on_the_shared_synapse(
    synapse_world: SynapseWorld,
) -> None:
    world = synapse_world
    world.letta.add_agent("Checked")
    assert (await world.sync()).ok
    world.make_server_admin(world.admin_id)
    code, checks = await doctor(world)
    assert code == 0 and failed(checks) == [], checks
    assert checks["registration for new agents"].startswith("ok open")
