"""`plan` (a dry run that writes nothing) and `demo` (no server, no configuration)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import httpx
import pytest
from test_cli import run

from app.cli import main
from app.state import MappingStore
from app.sync.plan_reads import NAME_CHECKS
from app.testing.harness import SyncHarness


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def a_changed_deployment(tmp_path: Path) -> tuple[SyncHarness, dict[str, str]]:
    """Synced, then an agent renamed, one added, and one's room deleted; the agent ids by role
    (and the renamed agent's user id)."""
    h = SyncHarness(tmp_path / "data")
    renamed, doomed, fine = (h.letta.add_agent(n) for n in ("Old", "Doomed", "Fine"))
    assert run(h, ["sync"])[0] == 0
    h.letta.rename(renamed, "New")
    new = h.letta.add_agent("Newcomer")
    state = json.loads((h.data_dir / "agent_user_mappings.json").read_text())
    h.homeserver.delete_room(state[doomed]["room_id"])
    user = state[renamed]["matrix_user_id"]
    return h, {"renamed": renamed, "doomed": doomed, "fine": fine, "new": new, "user": user}


def test_plan_reports_what_a_sync_would_do_and_writes_nothing(tmp_path: Path) -> None:
    h, ids = a_changed_deployment(tmp_path)
    renamed, doomed, fine, new = ids["renamed"], ids["doomed"], ids["fine"], ids["new"]
    files_before = snapshot(h.data_dir)
    rooms_before = set(h.homeserver.room_ids())
    counts_before = dict(h.homeserver.requests_by_kind)

    code, out, _ = run(h, ["plan", "--json"])

    plan = json.loads(out)
    actions = {a["agent_id"]: a["action"] for a in plan["actions"]}
    assert code == 0 and plan["matrix_checked"] and plan["space"] == "keep"
    # The admin is out of the deleted room: the agent, asked as the sync asks it, is too.
    assert actions == {renamed: "rename", doomed: "create_room", fine: "ok", new: "create"}
    assert snapshot(h.data_dir) == files_before
    assert set(h.homeserver.room_ids()) == rooms_before
    asked = {k: v for k, v in h.homeserver.requests_by_kind.items() if counts_before.get(k) != v}
    assert set(asked) <= {"versions", "register_available", "sync", "get_state_event"}


def test_plan_without_any_state_plans_to_create_everything(tmp_path: Path) -> None:
    h = SyncHarness(tmp_path / "data")
    h.letta.add_agent("First")

    code, out, _ = run(h, ["plan"])

    assert code == 0
    assert "rooms not checked" in out and "create" in out
    assert "bot account: will be registered" in out
    # Without a token only what needs none: is it Matrix, are the names free.
    assert set(h.homeserver.requests_by_kind) == {"versions", "register_available"}


def test_plan_with_an_empty_data_dir_on_an_existing_deployment_is_not_create_everything(
    tmp_path: Path,
) -> None:
    h = SyncHarness(tmp_path / "data")
    deployed = h.letta.add_agent("Deployed")
    assert run(h, ["sync"])[0] == 0
    elsewhere = SyncHarness(tmp_path / "elsewhere", homeserver=h.homeserver, letta=h.letta)

    code, out, _ = run(elsewhere, ["plan", "--json"])

    plan = json.loads(out)
    assert code == 1  # the sync would not get this agent in order
    assert [(a["agent_id"], a["action"]) for a in plan["actions"]] == [(deployed, "blocked")]
    assert "MATRIX_DATA_DIR" in plan["actions"][0]["detail"]
    assert "bot account: exists" in plan["notes"]


def test_plan_lists_agents_removed_from_letta(tmp_path: Path) -> None:
    h = SyncHarness(tmp_path / "data")
    gone = h.letta.add_agent("Gone")
    h.letta.add_agent("Stays")
    assert run(h, ["sync"])[0] == 0
    h.letta.remove(gone)

    code, out, _ = run(h, ["plan"])

    assert code == 0
    assert f"removed from Letta (their users and rooms are kept): {gone}" in out


def test_plan_against_a_url_that_is_not_a_homeserver_exits_2_naming_the_setting(
    tmp_path: Path,
) -> None:
    h = SyncHarness(tmp_path / "data")
    h.homeserver.fail_next("versions", 404, {"errcode": "M_UNRECOGNIZED", "error": "no"})

    code, out, err = run(h, ["plan"])

    assert code == 2 and out == ""
    assert "MATRIX_HOMESERVER_URL" in err


def test_demo_runs_with_no_server_and_no_configuration() -> None:
    out, err = io.StringIO(), io.StringIO()

    code = main(["demo"], env={}, out=out, err=err)

    text = out.getvalue()
    assert code == 0, err.getvalue()
    assert "users created: 12" in text and "rooms created: 12" in text
    assert "renamed: Librarian, Scout Prime" in text
    steady = int(re.search(r"requests for 12 agents: (\d+)", text).group(1))  # type: ignore[union-attr]
    assert steady <= 5


def test_plan_with_an_expired_admin_token_never_logs_in(tmp_path: Path) -> None:
    h = SyncHarness(tmp_path / "data")
    h.letta.add_agent("Agent")
    assert run(h, ["sync"])[0] == 0
    tokens = json.loads((h.data_dir / "access_tokens.json").read_text())
    h.homeserver.expire_token(tokens[h.admin_id]["access_token"])
    files_before, logins = snapshot(h.data_dir), h.homeserver.logins

    code, out, _ = run(h, ["plan", "--json"])

    assert code == 0 and json.loads(out)["matrix_checked"] is False
    assert h.homeserver.logins == logins
    assert snapshot(h.data_dir) == files_before


def test_plan_after_a_crash_between_saving_a_password_and_registering_is_not_blocked(
    tmp_path: Path,
) -> None:
    """The password is saved; the sync will log in with it, so the plan must not cry wolf."""
    h = SyncHarness(tmp_path / "data")
    agent_id = h.letta.add_agent("Interrupted")
    assert run(h, ["sync"])[0] == 0
    store = MappingStore.open(h.data_dir)
    mapping = store.get(agent_id)
    assert mapping is not None
    mapping.created = False
    store.save_mapping(mapping)
    store.close()

    code, out, _ = run(h, ["plan", "--json"])

    assert code == 0
    assert [a["action"] for a in json.loads(out)["actions"]] == ["create"]
    assert run(h, ["sync"])[0] == 0


def test_plan_with_letta_unreachable_names_the_setting_and_counts_nothing_in_order(
    tmp_path: Path,
) -> None:
    h = SyncHarness(tmp_path / "data")
    h.letta.add_agent("Unseen")
    h.override("list_agents", httpx.ConnectError("connection refused"))

    code, out, _ = run(h, ["plan"], RETRY_BUDGET="0")

    assert code == 1 and "LETTA_API_URL=" in out and "ConnectionFailed" in out
    assert "agents already in order" not in out


def test_help_of_plan_and_run_gives_no_exit_codes_but_their_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def help_of(command: str) -> str:
        with pytest.raises(SystemExit):
            main([command, "--help"], out=io.StringIO(), err=io.StringIO())
        return capsys.readouterr().out

    for command, own in (("plan", "Exit 0: the plan is made"), ("run", "then exits 0")):
        text = help_of(command)
        assert own in text and "every agent in order" not in text, text
    assert "every agent in order" in help_of("sync")


def test_plan_as_text_is_every_line_an_operator_reads(tmp_path: Path) -> None:
    h, ids = a_changed_deployment(tmp_path)
    renamed, doomed, new, agent_user = ids["renamed"], ids["doomed"], ids["new"], ids["user"]

    code, out, _ = run(h, ["plan"])

    assert code == 0
    assert out.splitlines() == [
        f"data directory: {h.data_dir.resolve()}",
        "space: keep",
        "bot account: exists",
        "Planned changes",
        "  action | agent id | name | detail | writes (step: what as account)",
        f"  create | {new} | Newcomer | user, room, space membership | ",
        f"  create_room | {doomed} | Doomed | the room is gone or the agent left | ",
        f"  rename | {renamed} | New | 'Old' -> 'New' | rename: displayname as {agent_user}; "
        "rename: m.room.name as @admin:localhost",
        "1 agents already in order",
    ]


def test_the_usage_lines_name_the_commands_and_the_store_actions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["store", "copy"], out=io.StringIO(), err=io.StringIO())
    out = io.StringIO()
    assert main([], out=out) == 0

    assert refused.value.code == 2
    error = capsys.readouterr().err  # (how choices are quoted varies by Python version)
    assert "invalid choice: 'copy'" in error and "import" in error and "export" in error
    assert out.getvalue().startswith("usage: letta-matrix-sync [-h] [--version] command ...\n")


def plan_notes(h: SyncHarness) -> list[str]:
    code, out, err = run(h, ["plan", "--json"])
    assert code in (0, 1), err
    return list(json.loads(out)["notes"])


def test_plan_notes_say_what_it_could_not_check(tmp_path: Path) -> None:
    closed = SyncHarness(tmp_path / "closed")
    closed.letta.add_agent("New")
    closed.homeserver.close_registration()
    many = SyncHarness(tmp_path / "many")
    for n in range(NAME_CHECKS + 2):
        many.letta.add_agent(f"New {n}")

    assert plan_notes(closed) == ["registration is closed here: names were not checked"]
    assert plan_notes(many) == [
        "bot account: will be registered",
        f"names checked for {NAME_CHECKS} of {NAME_CHECKS + 2} new agents",
    ]


def test_plan_in_appservice_mode_says_existing_agent_users_are_adopted(tmp_path: Path) -> None:
    h = SyncHarness(tmp_path / "data")
    h.use_appservice()
    h.letta.add_agent("Agent")
    assert run(h, ["sync"])[0] == 0

    assert plan_notes(h) == ["appservice mode: agent users that exist already are adopted"]


def test_plan_says_when_only_a_refused_agent_could_tell_whether_its_room_lives(
    tmp_path: Path,
) -> None:
    h = SyncHarness(tmp_path / "data")
    agent_id = h.letta.add_agent("Locked out")
    assert run(h, ["sync"])[0] == 0
    mapping = json.loads((h.data_dir / "agent_user_mappings.json").read_text())[agent_id]
    h.homeserver.force_leave(mapping["room_id"], h.admin_id)
    h.homeserver.change_password(mapping["matrix_user_id"], "changed-by-someone-else")

    code, out, _ = run(h, ["plan", "--json"])

    [planned] = json.loads(out)["actions"]
    assert code == 0  # a repair the sync may still make (it asks the agent first)
    assert (planned["action"], planned["detail"]) == (
        "repair",
        "admin not in the room, or the room is gone; the agent's token is refused",
    )


def test_plan_for_an_agent_without_a_stored_token_cannot_ask_it_and_says_what_it_knows(
    tmp_path: Path,
) -> None:
    """Without the agent's token, a plan (which never logs in) cannot ask the agent whether
    the room the admin left still lives."""
    h = SyncHarness(tmp_path / "data")
    agent_id = h.letta.add_agent("Tokenless")
    assert run(h, ["sync"])[0] == 0
    mapping = json.loads((h.data_dir / "agent_user_mappings.json").read_text())[agent_id]
    tokens_file = h.data_dir / "access_tokens.json"
    tokens = json.loads(tokens_file.read_text())
    del tokens[mapping["matrix_user_id"]]
    tokens_file.write_text(json.dumps(tokens))
    (h.data_dir / "agent_user_mappings.journal").unlink(missing_ok=True)
    h.homeserver.force_leave(mapping["room_id"], h.admin_id)

    code, out, _ = run(h, ["plan", "--json"])

    [planned] = json.loads(out)["actions"]
    assert code == 0
    assert (planned["action"], planned["detail"]) == (
        "repair",
        "admin not in the room, or the room is gone",
    )
