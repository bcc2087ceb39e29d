"""Accounts the homeserver refuses, through the CLI, on the fakes and on a real Synapse.

Each scenario is a plain function of a `World` (tests/worlds.py): the CLI runs its own event
loop. The message must name the cause and the setting to fix, never a password. Synapse refuses
a deactivated account like a wrong password (403 M_FORBIDDEN); only its admin API tells them
apart, so the scenarios run with an admin account that is a server admin, and without.
"""

from __future__ import annotations

import json

from worlds import World, mappings

TOKENS_FILE = "access_tokens.json"
NEW_PASSWORD = "changed-on-the-server-4711"


def localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


def one_error_line(code: int, out: str, err: list[str]) -> str:
    assert code == 2, err
    assert out == ""
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def synced_with_a_deactivated_bot(world: World, *, server_admin: bool) -> list[str]:
    """The messages with the bot's token stored, and then with none (a first login)."""
    world.letta.add_agent("Kept")
    assert world.cli("sync")[0] == 0
    if server_admin:
        world.make_server_admin(world.admin_id)
    world.deactivate(world.bot_id)
    with_token = one_error_line(*world.cli("sync"))
    (world.data_dir / TOKENS_FILE).unlink()
    return [with_token, one_error_line(*world.cli("sync"))]


def deactivated_bot_is_called_deactivated(world: World) -> None:
    for message in synced_with_a_deactivated_bot(world, server_admin=True):
        assert "deactivated" in message and world.bot_id in message, message
        assert "MATRIX_USERNAME" in message
        assert "refuse" not in message and "expired" not in message and "wrong" not in message


def deactivated_bot_without_a_server_admin_names_both_causes(world: World) -> None:
    for message in synced_with_a_deactivated_bot(world, server_admin=False):
        assert "MATRIX_PASSWORD" in message and world.bot_id in message, message
        assert "deactivated" in message


def deactivated_agent_fails_only_that_agent(world: World) -> None:
    gone, kept = world.letta.add_agent("Gone"), world.letta.add_agent("Kept")
    assert world.cli("sync")[0] == 0
    world.make_server_admin(world.admin_id)
    user = mappings(world)[gone]["matrix_user_id"]
    world.deactivate(user)
    world.letta.rename(gone, "Gone for good")  # the sync must act as the agent

    code, out, _ = world.cli("sync", "--json")

    report = json.loads(out)
    assert code == 1
    assert [failure["agent_id"] for failure in report["failures"]] == [gone]
    reason = report["failures"][0]["reason"]
    assert "deactivated" in reason and user in reason and "refused" not in reason, reason
    assert kept not in json.dumps(report["failures"])


def bot_password_changed_on_the_server_names_the_setting(world: World) -> None:
    world.letta.add_agent("Any")
    assert world.cli("sync")[0] == 0
    world.make_server_admin(world.admin_id)
    world.change_password(world.bot_id, NEW_PASSWORD)  # logs the bot out everywhere

    message = one_error_line(*world.cli("sync"))

    assert "MATRIX_PASSWORD" in message and world.bot_id in message, message
    assert "changed" in message and "deactivated" not in message
    assert NEW_PASSWORD not in message
    assert world.cli("sync", MATRIX_PASSWORD=NEW_PASSWORD)[0] == 0


def username_on_another_server_is_named(world: World) -> None:
    wrong = f"@{localpart(world.bot_id)}:wrong.example"

    first = one_error_line(*world.cli("sync", MATRIX_USERNAME=wrong))
    assert not world.has_user(world.bot_id)  # nothing registered under another name
    assert world.cli("sync")[0] == 0  # the bot exists from here on
    second = one_error_line(*world.cli("sync", MATRIX_USERNAME=wrong))  # the admin's token kept
    (world.data_dir / TOKENS_FILE).unlink()
    third = one_error_line(*world.cli("sync", MATRIX_USERNAME=wrong))

    for message in (first, second, third):
        assert "MATRIX_USERNAME" in message and wrong in message, message
        assert f"'{world.server_name}'" in message and "'wrong.example'" in message
        assert "password" not in message


CLI_SCENARIOS = [
    deactivated_bot_is_called_deactivated,
    deactivated_bot_without_a_server_admin_names_both_causes,
    deactivated_agent_fails_only_that_agent,
    bot_password_changed_on_the_server_names_the_setting,
    username_on_another_server_is_named,
]
