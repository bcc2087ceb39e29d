"""The defaults an operator gets by leaving settings out, checked on the homeserver they shape."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli import main
from app.testing.harness import SyncHarness

from helpers import cli_env


@pytest.fixture
def harness(tmp_path: Path) -> SyncHarness:
    return SyncHarness(tmp_path / "data")


def sync(h: SyncHarness, env: dict[str, str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(["sync"], env=env, transport=h.transport(), out=io.StringIO(), err=err)
    return code, err.getvalue()


def room_of(h: SyncHarness, agent_id: str) -> str:
    mappings = json.loads((h.data_dir / "agent_user_mappings.json").read_text())
    room_id: str = mappings[agent_id]["room_id"]
    return room_id


def test_without_matrix_admin_username_the_bot_is_the_admin(harness: SyncHarness) -> None:
    h = harness
    agent_id = h.letta.add_agent("Solo")
    env = cli_env(h)
    del env["MATRIX_ADMIN_USERNAME"], env["MATRIX_ADMIN_PASSWORD"]

    code, err = sync(h, env)

    assert code == 0, err
    assert not h.homeserver.has_user(h.admin_id)  # no second account was made up
    room_id = room_of(h, agent_id)
    assert h.homeserver.members(room_id)[h.bot_id] == "join"
    space_id = json.loads((h.data_dir / "letta_space_config.json").read_text())["space_id"]
    assert h.homeserver.members(space_id)[h.bot_id] == "join"


def test_without_matrix_admin_password_the_admin_signs_in_with_the_bots_password(
    harness: SyncHarness,
) -> None:
    h = harness
    env = cli_env(h)
    del env["MATRIX_ADMIN_PASSWORD"]
    h.homeserver.register_user("admin", env["MATRIX_PASSWORD"])
    agent_id = h.letta.add_agent("Shared secret")

    code, err = sync(h, env)

    assert code == 0, err
    assert h.homeserver.members(room_of(h, agent_id))[h.admin_id] == "join"


@pytest.mark.parametrize("admin", [None, "letta", "@letta:localhost"])
def test_appservice_mode_refuses_the_sender_as_admin_before_any_request(
    harness: SyncHarness, admin: str | None
) -> None:
    """Synapse cannot serve `/sync` for an appservice's sender (HTTP 500): the admin must be
    another user. Said before anything is sent, naming the setting; never the server's fault."""
    h = harness
    h.use_appservice()
    env = cli_env(h)
    env.pop("MATRIX_ADMIN_USERNAME", None)
    if admin is not None:
        env["MATRIX_ADMIN_USERNAME"] = admin
    sent_before = len(h.router.calls)

    code, err = sync(h, env)

    assert code == 2 and "MATRIX_ADMIN_USERNAME" in err and "sender" in err
    assert "try again later" not in err and len(h.router.calls) == sent_before


def test_a_bot_that_cannot_be_registered_on_a_closed_homeserver_is_named_as_such(
    harness: SyncHarness,
) -> None:
    """The bot does not exist and registration is closed: the login is refused, but the cause
    is the closed registration, not (only) a password."""
    h = harness
    h.homeserver.close_registration()
    code, err = sync(h, cli_env(h))

    assert code == 2 and "registration is closed" in err
    assert "register_new_matrix_user" in err and "appservice mode" in err
    assert not h.homeserver.has_user(h.bot_id)
