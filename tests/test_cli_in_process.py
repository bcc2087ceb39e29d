"""Command-line behaviour the process tests (tests/reliability) check, run in-process too.

Tests that start `python -m app` are invisible to mutation testing's per-test selection; these
run the same scenarios through `app.cli.main` with an injected transport and clock.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from app.cli import COMMANDS, main
from app.http.transport import Request, Response, Transport
from app.testing.harness import SyncHarness

from helpers import cli_env


@pytest.fixture
def harness(tmp_path: Path) -> SyncHarness:
    return SyncHarness(tmp_path / "data")


class CtrlCAfter:
    """Forwards requests; the n-th one is interrupted as Ctrl-C interrupts a sync."""

    def __init__(self, inner: Transport, n: int) -> None:
        self.inner, self.left = inner, n

    async def send(self, request: Request) -> Response:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ClosedPipe(io.StringIO):
    """stdout read by `| head` that has already exited."""

    def write(self, text: str) -> int:
        raise BrokenPipeError

    def flush(self) -> None:
        raise BrokenPipeError


def sync(
    h: SyncHarness, transport: Transport | None = None, out: io.StringIO | None = None
) -> tuple[int, str]:
    err = io.StringIO()
    code = main(
        ["sync"],
        env=cli_env(h),
        transport=transport or h.transport(),
        out=out or io.StringIO(),
        err=err,
        pacing=h.clock.pacing(),
    )
    return code, err.getvalue()


def test_ctrl_c_during_a_sync_exits_130_with_one_line_and_the_next_sync_goes_on(
    harness: SyncHarness,
) -> None:
    agent_id = harness.letta.add_agent("Interrupted")

    code, err = sync(harness, CtrlCAfter(harness.transport(), 8))

    assert code == 130
    assert err.splitlines()[-1] == (
        "interrupted: what was done is saved; the next sync goes on from there"
    )
    assert sync(harness)[0] == 0
    users = [u for u in harness.homeserver.user_ids() if u.startswith("@agent_")]
    assert len(users) == 1 and agent_id.replace("-", "_") in users[0]


def test_a_homeserver_failing_with_5xx_during_setup_exits_1_with_one_error_line(
    harness: SyncHarness,
) -> None:
    harness.override(
        "register", httpx.Response(500, json={"errcode": "M_UNKNOWN", "error": "db gone"})
    )

    code, err = sync(harness)

    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "db gone" in errors[0]


@pytest.mark.parametrize("failing", [False, True])
def test_a_closed_stdout_pipe_keeps_the_commands_exit_code(
    harness: SyncHarness, failing: bool
) -> None:
    assert sync(harness)[0] == 0
    if failing:
        harness.letta.add_agent("Doomed")
        harness.homeserver.fail_next("createRoom", 400, {"errcode": "M_UNKNOWN", "error": "no"})

    code, _ = sync(harness, out=ClosedPipe())

    assert code == (1 if failing else 0)


def test_no_command_prints_the_help_listing_every_command_and_exits_0() -> None:
    out = io.StringIO()

    assert main([], out=out) == 0
    text = out.getvalue()
    assert text.startswith("usage: letta-matrix-sync")
    for name in COMMANDS:
        assert name in text
    assert "exit codes:" in text and "MATRIX_HOMESERVER_URL" in text


def test_version_prints_the_program_and_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])

    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("letta-matrix-sync ")


def test_the_help_goes_to_the_real_stdout_when_no_stream_is_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """And that stdout is left as it was: it is sent to /dev/null only once its reader is
    gone (`| head`)."""
    assert main([]) == 0

    assert capsys.readouterr().out.startswith("usage: letta-matrix-sync")
    print("still here")
    assert capsys.readouterr().out == "still here\n"
