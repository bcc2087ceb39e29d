"""What `sync` prints when things go wrong, line by line, in a pipe, on a terminal and as JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from app.cli import main
from app.sync.report import SyncReport
from app.testing.harness import SyncHarness

from helpers import cli_env

LETTA_DOWN = httpx.Response(500, json={"detail": "db down"})
LETTA_ERROR = "Letta error: LettaError: Letta HTTP 500: db down"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def harness(tmp_path: Path) -> SyncHarness:
    return SyncHarness(tmp_path / "data")


def sync(h: SyncHarness, *args: str, out: io.StringIO | None = None) -> tuple[int, str]:
    out = out or io.StringIO()
    code = main(
        ["sync", *args],
        env=cli_env(h),
        transport=h.transport(),
        out=out,
        err=io.StringIO(),
        pacing=h.clock.pacing(),
    )
    return code, out.getvalue()


def space_id(h: SyncHarness) -> str:
    space: str = json.loads((h.data_dir / "letta_space_config.json").read_text())["space_id"]
    return space


def test_letta_failing_in_a_pipe_prints_every_count_and_the_error(harness: SyncHarness) -> None:
    harness.letta.add_agent("Unseen")
    harness.override("list_agents", LETTA_DOWN)

    code, out = sync(harness)

    assert code == 1
    assert out.splitlines() == [
        f"data directory: {harness.data_dir.resolve()}",
        "agents seen: 0",
        f"space: {space_id(harness)} (created)",
        "users created: 0",
        "rooms created: 0",
        "renamed: 0",
        "repaired: 0",
        "migrated into space: 0",
        "history messages imported: 0",
        "history messages skipped: 0",
        "removed from Letta (kept): 0",
        LETTA_ERROR,
    ]


def test_letta_failing_on_a_terminal_prints_the_table_and_the_error(
    harness: SyncHarness,
) -> None:
    harness.override("list_agents", LETTA_DOWN)

    code, out = sync(harness, out=Terminal())

    assert code == 1
    assert "Sync report" in out and LETTA_ERROR in out
    assert "Failed agents" not in out  # no agent failed: Letta did


def test_letta_failing_as_json_is_not_ok_and_names_the_error(harness: SyncHarness) -> None:
    harness.override("list_agents", LETTA_DOWN)

    code, out = sync(harness, "--json")

    report = json.loads(out)
    assert code == 1
    assert report["ok"] is False
    assert report["letta_error"] == LETTA_ERROR.removeprefix("Letta error: ")
    assert report["space_created"] is True and report["space_id"] == space_id(harness)


def test_a_failed_agent_in_a_pipe_is_one_line_with_its_step_and_reason(
    harness: SyncHarness,
) -> None:
    assert sync(harness)[0] == 0  # the space and the core users first
    agent_id = harness.letta.add_agent("Doomed")
    harness.homeserver.fail_next("createRoom", 400, {"errcode": "M_UNKNOWN", "error": "no room"})

    code, out = sync(harness)

    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert failed == [
        f"FAILED {agent_id} (Doomed) at room: MatrixError: Matrix HTTP 400 M_UNKNOWN: no room"
    ]
    assert f"space: {space_id(harness)}" in out.splitlines()  # found in the state: no note
    assert "agents seen: 1" in out.splitlines()


def test_the_space_line_says_when_the_space_was_found_again_by_its_tag() -> None:
    found = SyncReport(space_id="!s", space_found=True)
    created = SyncReport(space_id="!s", space_created=True)
    unknown = SyncReport()

    assert "space: !s (found again by its tag)" in found.summary().splitlines()
    assert "space: !s (created)" in created.summary().splitlines()
    assert "space: -" in unknown.summary().splitlines()
    assert unknown.ok and not SyncReport(letta_error="x").ok
