"""Refused accounts on the in-process fakes: the shared scenarios (tests/account_scenarios.py),
and the paths a real Synapse of the contract tier does not take (an M_USER_DEACTIVATED answer,
a homeserver that publishes its server name, or does not)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from account_scenarios import CLI_SCENARIOS, one_error_line

from app.errors import ConfigError
from app.testing.harness import SyncHarness

from worlds import FakeWorld, World

WRONG = "@letta:wrong.example"


@pytest.fixture
def world(tmp_path: Path) -> FakeWorld:
    return FakeWorld(SyncHarness(tmp_path / "data"))


@pytest.mark.parametrize("scenario", CLI_SCENARIOS, ids=lambda s: s.__name__)
def test_account_scenario(scenario: Callable[[World], None], world: FakeWorld) -> None:
    scenario(world)


def test_a_login_answered_user_deactivated_says_so(world: FakeWorld) -> None:
    world.harness.homeserver.register_user("letta", "bot-secret-password")
    answer = {"errcode": "M_USER_DEACTIVATED", "error": "This account has been deactivated"}
    world.harness.homeserver.fail_next("login", 403, answer)

    message = one_error_line(*world.cli("sync"))

    assert "@letta:localhost (MATRIX_USERNAME) has been deactivated" in message


def test_a_bot_alone_on_another_server_is_named_from_the_published_server_name(
    world: FakeWorld,
) -> None:
    # No admin account: nothing has logged in when the bot's user id is checked.
    message = one_error_line(*world.cli("sync", MATRIX_USERNAME=WRONG, MATRIX_ADMIN_USERNAME=""))

    assert "MATRIX_USERNAME=@letta:wrong.example names the server 'wrong.example'" in message
    assert "this homeserver is 'localhost'" in message
    assert not world.has_user("@letta:localhost")


@pytest.fixture
def keys_hidden(world: FakeWorld) -> FakeWorld:
    """A homeserver whose client URL does not serve the federation keys (no server name)."""
    unrecognized = {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
    world.harness.override("server_keys", httpx.Response(404, json=unrecognized))
    return world


def test_an_unverifiable_server_part_is_offered_as_a_cause(keys_hidden: FakeWorld) -> None:
    world = keys_hidden
    world.harness.homeserver.register_user("letta", "the-real-password")

    message = one_error_line(*world.cli("sync", MATRIX_USERNAME=WRONG, MATRIX_ADMIN_USERNAME=""))

    assert "MATRIX_PASSWORD" in message
    assert "MATRIX_USERNAME names a server ('wrong.example') other than" in message


def test_an_unverifiable_server_part_is_caught_once_registered(keys_hidden: FakeWorld) -> None:
    world = keys_hidden

    message = one_error_line(*world.cli("sync", MATRIX_USERNAME=WRONG, MATRIX_ADMIN_USERNAME=""))

    assert "this homeserver is 'localhost'" in message
    assert "(the homeserver registered @letta:localhost)" in message


@pytest.mark.anyio
async def test_a_refused_mcp_account_is_named_by_its_settings(sync_harness: SyncHarness) -> None:
    h = sync_harness
    with pytest.raises(ConfigError) as caught:
        await h.sync(mcp_username="@mcp:elsewhere.example", mcp_password="mcp-password")
    assert "MATRIX_MCP_USERNAME=@mcp:elsewhere.example names the server" in str(caught.value)


def test_an_admin_that_cannot_log_in_on_a_closed_homeserver_is_told_how_to_make_one(
    world: FakeWorld,
) -> None:
    world.harness.homeserver.close_registration()

    message = one_error_line(*world.cli("sync"))

    assert message.endswith(
        "cannot log in as 'admin', and registration is closed on this homeserver, so "
        "MATRIX_ADMIN_USERNAME cannot be registered either: if the account does not exist, "
        "create it with the homeserver's tools (Synapse: register_new_matrix_user) or use "
        "appservice mode (MATRIX_APPSERVICE_REGISTRATION); if it exists, the password in "
        "MATRIX_ADMIN_PASSWORD is wrong"
    )
