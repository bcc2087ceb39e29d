"""Server trouble during setup, through the CLI: the space survives a 502 and a lost reply, and a
homeserver that keeps failing exits 1 (try later), not 2 (fix the configuration).

`app.cli.main` runs in-process on the fakes, with the harness's instant clock behind retries.
"""

from __future__ import annotations

import pytest
from reliability_support import (
    HTML_PAGE,
    Effect,
    FrontDoor,
    after_server,
    assert_converged,
    cut_off,
    respond,
    run_cli,
    space_on_disk,
    spaces,
)

from app.testing.harness import SyncHarness

pytestmark = pytest.mark.usefixtures("restore_logging")

CREATE_ROOM = r"/createRoom$"
HTML = {"Content-Type": "text/html"}
BAD_GATEWAY = respond(502, raw=HTML_PAGE, headers=HTML)


def lost_replies(h: SyncHarness) -> dict[str, Effect]:
    """Faults after which the server may or may not have made the space."""
    return {
        "502_before_the_server": BAD_GATEWAY,
        "502_after_the_server": after_server(h.homeserver, BAD_GATEWAY),
        "cut_off_after_the_server": after_server(h.homeserver, cut_off()),
    }


@pytest.mark.parametrize(
    "fault", ["502_before_the_server", "502_after_the_server", "cut_off_after_the_server"]
)
def test_one_failed_space_create_is_retried_and_makes_one_space(
    door_harness: tuple[SyncHarness, FrontDoor], capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    h, door = door_harness
    agent_id = h.letta.add_agent("Ada")
    door.matrix("POST", CREATE_ROOM, lost_replies(h)[fault])  # the first createRoom: the space

    code, out, err = run_cli(h, capsys)

    assert code == 0, err
    assert spaces(h.homeserver) == [space_on_disk(h.data_dir)["space_id"]]
    assert_converged(h.homeserver, h.data_dir, [agent_id], members=(h.admin_id, h.bot_id))
    assert "rooms created: 1" in out


def test_a_space_create_that_keeps_failing_exits_1_naming_the_homeserver(
    door_harness: tuple[SyncHarness, FrontDoor], capsys: pytest.CaptureFixture[str]
) -> None:
    h, door = door_harness
    h.letta.add_agent("Ada")
    door.matrix("POST", CREATE_ROOM, BAD_GATEWAY, forever=True)

    code, out, err = run_cli(h, capsys)

    assert code == 1 and out == ""
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert f"MATRIX_HOMESERVER_URL={h.homeserver.base_url}" in err[0]
    assert "502" in err[0] and "try again later" in err[0]
    assert "<" not in err[0]  # no HTML
    assert spaces(h.homeserver) == []
    assert 0 < sum(h.clock.sleeps) < 60  # it waited between attempts, and not forever


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", r"/register/available$"), ("POST", r"/register$"), ("GET", r"/v3/sync$")],
)
def test_a_setup_request_that_keeps_failing_exits_1(
    door_harness: tuple[SyncHarness, FrontDoor],
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
) -> None:
    h, door = door_harness
    door.matrix(method, path, respond(503, raw=HTML_PAGE, headers=HTML), forever=True)

    code, out, err = run_cli(h, capsys)

    assert code == 1 and out == ""
    assert len(err) == 1 and f"MATRIX_HOMESERVER_URL={h.homeserver.base_url}" in err[0]
    assert "503" in err[0] and "<" not in err[0]
