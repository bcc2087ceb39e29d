"""Bad configuration through the CLI: exit code 2, one clear line on stderr, no traceback.

`app.cli.main` runs in-process with an injected transport onto the fakes and an instant clock
(`run_cli`). (The unreachable homeserver, which needs a real socket, is in
test_unreachable_homeserver.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import Effect, FrontDoor, harness_with_door, respond, run_cli

from app.testing.harness import SyncHarness

pytestmark = [pytest.mark.usefixtures("restore_logging"), pytest.mark.child_process]


@pytest.fixture
def world(tmp_path: Path) -> tuple[SyncHarness, FrontDoor]:
    return harness_with_door(tmp_path / "data")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MATRIX_HOMESERVER_URL", "localhost:8008"),
        ("MATRIX_HOMESERVER_URL", "matrix.example.org"),
        ("MATRIX_HOMESERVER_URL", "ftp://localhost:8008"),
        ("LETTA_API_URL", "localhost:8283"),
    ],
)
def test_url_without_http_scheme_exits_2_naming_the_variable(
    world: tuple[SyncHarness, FrontDoor],
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    h, _ = world

    code, out, err = run_cli(h, capsys, **{variable: value})

    assert code == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("error: ")
    assert variable in err[0] and value in err[0]
    assert sum(h.homeserver.requests_by_kind.values()) == 0  # nothing was sent


@pytest.mark.parametrize(
    ("variable", "account"),
    [("MATRIX_ADMIN_PASSWORD", "admin"), ("MATRIX_PASSWORD", "letta")],
)
def test_wrong_password_exits_2_naming_the_setting(
    world: tuple[SyncHarness, FrontDoor],
    capsys: pytest.CaptureFixture[str],
    variable: str,
    account: str,
) -> None:
    h, _ = world
    h.homeserver.register_user(account, "the-real-password-elsewhere")

    code, out, err = run_cli(h, capsys, **{variable: "a-wrong-password-3141"})

    assert code == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("error: ")
    assert variable in err[0] and account in err[0]
    assert "a-wrong-password-3141" not in err[0]
    assert "the-real-password-elsewhere" not in err[0]


LETTA_HTML: dict[str, Effect] = {
    "html_200": respond(200, raw=b"<!doctype html><html><title>Letta ADE</title></html>"),
    "html_404": respond(404, raw=b"<html><body>404 Not Found</body></html>"),
}


@pytest.mark.parametrize("answer", list(LETTA_HTML))
def test_letta_url_answering_html_exits_2_with_one_line(
    world: tuple[SyncHarness, FrontDoor], capsys: pytest.CaptureFixture[str], answer: str
) -> None:
    h, door = world
    door.letta("GET", r"^/v1/agents/?$", LETTA_HTML[answer], forever=True)

    code, _, err = run_cli(h, capsys)

    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "LETTA_API_URL" in err[0]


def test_run_on_trio_without_trio_installed_exits_2_naming_the_setting(tmp_path: Path) -> None:
    """A process where `import trio` fails, as on an install without it: `run` says what is
    missing and exits 2, instead of a traceback and a restart loop under systemd."""
    script = (
        "import sys\n"
        "sys.modules['trio'] = None  # not installed\n"
        "from app.cli import main\n"
        "sys.exit(main(['run']))\n"
    )
    env = {
        "MATRIX_HOMESERVER_URL": "http://127.0.0.1:9",
        "MATRIX_USERNAME": "letta",
        "MATRIX_PASSWORD": "pw",
        "LETTA_API_URL": "http://127.0.0.1:9",
        "MATRIX_DATA_DIR": str(tmp_path / "data"),
        "SYNC_BACKEND": "trio",
        "PATH": os.environ.get("PATH", ""),
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "SYNC_BACKEND=trio needs trio" in done.stderr and "Traceback" not in done.stderr
