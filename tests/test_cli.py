"""The command line: exit codes, report output and status, through an injected transport."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from faulty_files import FaultyFiles

from app.cli import main
from app.testing.harness import SyncHarness

from helpers import cli_env


@pytest.fixture
def harness(tmp_path: Path) -> SyncHarness:
    return SyncHarness(tmp_path / "data")


def run(h: SyncHarness, argv: list[str], **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=cli_env(h, **env), transport=h.transport(), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_sync_prints_the_report_and_exits_zero(harness: SyncHarness) -> None:
    harness.letta.add_agent("Cli agent")

    code, out, _ = run(harness, ["sync"])

    assert code == 0
    assert "rooms created: 1" in out


def test_sync_json_report(harness: SyncHarness) -> None:
    agent_id = harness.letta.add_agent("Json agent")

    code, out, _ = run(harness, ["sync", "--json"])

    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert report["rooms_created"] == [agent_id]


def test_exit_one_when_an_agent_failed(harness: SyncHarness) -> None:
    assert run(harness, ["sync"])[0] == 0  # space and core users first
    agent_id = harness.letta.add_agent("Doomed")
    harness.homeserver.fail_next(
        "createRoom", 400, {"errcode": "M_UNKNOWN", "error": "no rooms today"}
    )

    code, out, _ = run(harness, ["sync"])

    assert code == 1
    assert agent_id in out and "no rooms today" in out


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MATRIX_HOMESERVER_URL": ""}, "MATRIX_HOMESERVER_URL"),
        ({"MATRIX_HOMESERVER_URL": "localhost:8008"}, "MATRIX_HOMESERVER_URL"),
        ({"LETTA_API_URL": ""}, "LETTA_API_URL"),
        ({"HISTORY_IMPORT_LIMIT": "many"}, "HISTORY_IMPORT_LIMIT"),
        ({"ROOM_NAME_TEMPLATE": "{nope}"}, "ROOM_NAME_TEMPLATE"),
    ],
)
def test_configuration_errors_exit_two_naming_the_problem(
    harness: SyncHarness, env: dict[str, str], needle: str
) -> None:
    code, out, err = run(harness, ["sync"], **env)

    assert code == 2
    assert needle in err and "Traceback" not in err
    assert out == ""


def test_wrong_admin_password_exits_two(harness: SyncHarness) -> None:
    harness.homeserver.register_user("admin", "the-real-password")

    code, _, err = run(harness, ["sync"])

    assert code == 2 and "MATRIX_ADMIN_PASSWORD" in err
    assert "admin-secret-password" not in err and "the-real-password" not in err


def test_status_lists_mappings_and_flags_agents_not_in_order(harness: SyncHarness) -> None:
    good = harness.letta.add_agent("Good")
    run(harness, ["sync"])
    bad = harness.letta.add_agent("Bad")
    harness.homeserver.fail_next("createRoom", 400, {"errcode": "M_UNKNOWN", "error": "x"})
    run(harness, ["sync"])

    code, out, _ = run(harness, ["status", "--json"])

    status = json.loads(out)
    assert code == 0
    in_order = {row["agent_id"]: row["in_order"] for row in status["agents"]}
    assert in_order == {good: True, bad: False}
    text = run(harness, ["status"])[1]
    assert f"!!  {bad}" in text and f"ok  {good}" in text


def test_a_url_that_is_not_a_homeserver_names_the_setting(harness: SyncHarness) -> None:
    harness.router.get(url__regex=r"^http://localhost:9999/").respond(
        404, content=b"<html><body>Not Found</body></html>"
    )

    code, _, err = run(harness, ["sync"], MATRIX_HOMESERVER_URL="http://localhost:9999")

    assert code == 2
    assert "MATRIX_HOMESERVER_URL=http://localhost:9999 does not answer like a Matrix" in err


def test_a_sync_that_cannot_save_its_state_exits_four_naming_the_data_dir(
    harness: SyncHarness,
) -> None:
    harness.letta.add_agent("Saved or not")
    out, err = io.StringIO(), io.StringIO()
    files = FaultyFiles(fail_at=3)  # a few writes in: the disk is full

    code = main(
        ["sync"], env=cli_env(harness), transport=harness.transport(), out=out, err=err, files=files
    )

    assert code == 4
    assert f"MATRIX_DATA_DIR={harness.data_dir}" in err.getvalue()
    assert "No space left on device" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_status_before_any_sync_says_so_and_with_a_space_shows_it(harness: SyncHarness) -> None:
    code, before, _ = run(harness, ["status"])
    data_dir = harness.data_dir.resolve()
    assert code == 0
    assert before == (
        f"data directory: {data_dir}\nno state found here: no sync has run with this "
        "MATRIX_DATA_DIR\n"
    )
    run(harness, ["sync"])  # no agents yet: the space alone is recorded
    text = run(harness, ["status"])[1]
    space = json.loads(run(harness, ["status", "--json"])[1])
    assert space["data_dir"] == str(data_dir) and space["agents"] == []
    assert f"space: {space['space']} (Letta Agents)" in text
    assert "(ok = user, room and joins in order; !! = to repair on the next sync;" in text


def test_plan_prints_its_table_with_named_columns(harness: SyncHarness) -> None:
    harness.letta.add_agent("Planned")
    code, out, _ = run(harness, ["plan"])
    assert code == 0
    header = next(line for line in out.splitlines() if "agent id" in line)
    cells = [cell.strip() for cell in header.split("|")]
    assert cells == ["action", "agent id", "name", "detail", "writes (step: what as account)"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_sync_json_on_a_terminal_is_indented_json_without_a_progress_bar(
    harness: SyncHarness,
) -> None:
    harness.letta.add_agent("Shown")
    out, err = Terminal(), io.StringIO()

    code = main(
        ["sync", "--json"], env=cli_env(harness), transport=harness.transport(), out=out, err=err
    )

    assert code == 0
    report = json.loads(out.getvalue())  # nothing but the report
    assert report["ok"] is True
    assert report["data_dir"] == report["store"] == str(harness.data_dir.resolve())
    assert out.getvalue().startswith('{\n  "data_dir": ') and out.getvalue().endswith("}\n")


def test_sync_retry_failed_tries_a_held_agent_now(harness: SyncHarness) -> None:
    """A deactivated agent user is held back after it fails; --retry-failed tries it anyway
    (and, failing again, holds it longer)."""
    agent_id = harness.letta.add_agent("Deactivated")
    run(harness, ["sync"])
    state = json.loads((harness.data_dir / "agent_user_mappings.json").read_text())
    harness.homeserver.deactivate_user(state[agent_id]["matrix_user_id"])
    harness.letta.rename(agent_id, "Renamed")
    run(harness, ["sync"])  # fails, and is held back from now on

    def next_try(*flags: str) -> str:
        code, out, _ = run(harness, ["sync", "--json", *flags])
        [failure] = json.loads(out)["failures"]
        assert code == 1 and failure["agent_id"] == agent_id
        return str(failure["next_try"])

    held = next_try()
    assert next_try() == held  # not tried: the same wait
    assert next_try("--retry-failed") > held  # tried now, and held for longer
