"""The command line at its edges, as real processes: pipes that close early, Ctrl-C, a bare
command, and a data directory whose parents are missing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from served_fakes import Served, SyncProcess, free_port, sync_env, wait_for

from app.state.store import MAPPINGS_FILE

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

WAIT = 60


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def head(process: subprocess.Popen[bytes], lines: int) -> tuple[list[bytes], int, str]:
    """Read `lines` lines then close the pipe, as `| head -n LINES` does."""
    assert process.stdout is not None and process.stderr is not None
    read = [process.stdout.readline() for _ in range(lines)]
    process.stdout.close()
    code = process.wait(timeout=WAIT)
    return read, code, process.stderr.read().decode()


def big_state(data_dir: Path, agents: int) -> None:
    """A mapping file far larger than a pipe's buffer, so `status` must meet the closed pipe."""
    data_dir.mkdir(mode=0o700)
    mappings = {
        f"agent-{n:05d}": {
            "agent_id": f"agent-{n:05d}",
            "agent_name": f"Agent number {n}",
            "matrix_user_id": f"@agent_{n:05d}:localhost",
            "matrix_password": "not-a-real-password",
            "created": True,
            "room_id": f"!room{n:05d}abcdefghijklmnop",
            "room_created": True,
        }
        for n in range(agents)
    }
    (data_dir / MAPPINGS_FILE).write_text(json.dumps(mappings))


def test_status_into_a_pipe_closed_after_one_line_ends_cleanly(tmp_path: Path) -> None:
    big_state(tmp_path / "data", 3_000)
    env = sync_env("http://127.0.0.1:9", "http://127.0.0.1:9", tmp_path / "data")

    lines, code, err = head(start(["status"], env, tmp_path), 1)

    assert lines[0].startswith(b"data directory: ")
    assert code == 0 and err == ""


def test_demo_into_a_pipe_closed_after_one_line_ends_cleanly(tmp_path: Path) -> None:
    lines, code, err = head(start(["demo"], sync_env("", "", tmp_path / "data"), tmp_path), 1)

    assert lines[0].startswith(b"== 1. First sync")
    assert code == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("one_fails", [False, True], ids=["all-ok", "one-agent-fails"])
def test_sync_json_into_a_closed_pipe_keeps_its_own_exit_code(
    tmp_path: Path, one_fails: bool
) -> None:
    served = Served()
    agents = [served.letta.add_agent(f"Piped {n}") for n in range(3)]
    if one_fails:
        # after=1: the space's createRoom goes through, the first agent's fails.
        served.homeserver.fail_next(
            "createRoom", 400, {"errcode": "M_UNKNOWN", "error": "no"}, after=1
        )
    with served.running() as (matrix_url, letta_url):
        env = sync_env(matrix_url, letta_url, tmp_path / "data")
        _, code, err = head(start(["sync", "--json"], env, tmp_path), 0)

    assert code == (1 if one_fails else 0), err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    saved = json.loads((tmp_path / "data" / MAPPINGS_FILE).read_text())
    assert set(saved) == set(agents)  # the sync itself finished and saved its state


def test_ctrl_c_during_a_sync_prints_one_line_exits_130_and_frees_the_data_dir(
    tmp_path: Path,
) -> None:
    served = Served(gate=threading.Event())
    served.letta.add_agent("Interrupted")
    with served.running() as (matrix_url, letta_url):
        env = sync_env(matrix_url, letta_url, tmp_path / "data", LOG_LEVEL="WARNING")
        victim = SyncProcess.start(env, tmp_path, "interrupted")
        assert wait_for(served.first_request.is_set, victim), victim.stderr
        victim.proc.send_signal(signal.SIGINT)
        code = victim.wait()
        assert served.gate is not None
        served.gate.set()
        rerun = SyncProcess.start(env, tmp_path, "rerun")
        rerun_code = rerun.wait()

    assert code == 130, victim.stderr
    assert victim.stderr.splitlines() == [
        "interrupted: what was done is saved; the next sync goes on from there"
    ]
    assert rerun_code == 0, rerun.stderr  # not 3: the lock went with the interrupted process


def test_a_bare_command_prints_help_and_exits_zero(tmp_path: Path) -> None:
    process = start([], sync_env("", "", tmp_path / "data"), tmp_path)
    out, err = process.communicate(timeout=WAIT)

    assert process.returncode == 0, err
    assert b"usage: letta-matrix-sync" in out and b"exit codes:" in out


def test_a_data_dir_whose_parent_is_missing_is_not_created(tmp_path: Path) -> None:
    served = Served()
    served.letta.add_agent("Nowhere")
    data_dir = tmp_path / "typo" / "data"
    with served.running() as (matrix_url, letta_url):
        process = start(["sync"], sync_env(matrix_url, letta_url, data_dir), tmp_path)
        _, err = process.communicate(timeout=WAIT)

    assert process.returncode == 2
    assert "MATRIX_DATA_DIR" in err.decode() and str(tmp_path / "typo") in err.decode()
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("command", ["sync", "plan"])
def test_sync_and_plan_print_the_resolved_data_dir(tmp_path: Path, command: str) -> None:
    served = Served()
    served.letta.add_agent("Located")
    with served.running() as (matrix_url, letta_url):
        env = sync_env(matrix_url, letta_url, Path("relative-data"))
        process = start([command], env, tmp_path)
        out, err = process.communicate(timeout=WAIT)

    assert process.returncode == 0, err
    assert f"data directory: {tmp_path / 'relative-data'}" in out.decode()


def test_an_empty_data_dir_on_an_existing_deployment_stops_with_one_message(
    tmp_path: Path,
) -> None:
    served = Served()
    for n in range(4):
        served.letta.add_agent(f"Deployed {n}")
    with served.running() as (matrix_url, letta_url):
        first = start(["sync"], sync_env(matrix_url, letta_url, tmp_path / "data"), tmp_path)
        assert first.wait(timeout=WAIT) == 0
        rooms = len(served.homeserver.room_ids())
        env = sync_env(matrix_url, letta_url, tmp_path / "elsewhere", LOG_LEVEL="WARNING")
        process = start(["sync"], env, tmp_path)
        out, err = process.communicate(timeout=WAIT)

    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "MATRIX_DATA_DIR" in lines[0] and "existing deployment" in lines[0]
    assert out == b"" and len(served.homeserver.room_ids()) == rooms


def test_plan_with_an_empty_data_dir_on_an_existing_deployment_shows_the_blocked_agents(
    tmp_path: Path,
) -> None:
    served = Served()
    agents = [served.letta.add_agent(f"Deployed {n}") for n in range(2)]
    with served.running() as (matrix_url, letta_url):
        first = start(["sync"], sync_env(matrix_url, letta_url, tmp_path / "data"), tmp_path)
        assert first.wait(timeout=WAIT) == 0
        requests = dict(served.homeserver.requests_by_kind)
        env = sync_env(matrix_url, letta_url, tmp_path / "elsewhere")
        process = start(["plan", "--json"], env, tmp_path)
        out, err = process.communicate(timeout=WAIT)

    assert process.returncode == 1, err
    plan = json.loads(out)
    assert {(a["agent_id"], a["action"]) for a in plan["actions"]} == {
        (agent, "blocked") for agent in agents
    }
    asked = {k for k, v in served.homeserver.requests_by_kind.items() if requests.get(k) != v}
    assert asked == {"versions", "register_available"}  # read-only, no token, no login
    assert not (tmp_path / "elsewhere").exists()


def test_https_to_a_plain_http_homeserver_exits_2_hinting_at_the_scheme(tmp_path: Path) -> None:
    served = Served()
    with served.running() as (matrix_url, letta_url):
        tls_url = matrix_url.replace("http://", "https://")
        process = start(["sync"], sync_env(tls_url, letta_url, tmp_path / "data"), tmp_path)
        _, err = process.communicate(timeout=WAIT)

    assert process.returncode == 2
    assert f"MATRIX_HOMESERVER_URL={tls_url}" in err.decode() and "use http://" in err.decode()


def test_a_homeserver_url_with_an_extra_path_exits_2_naming_the_setting(tmp_path: Path) -> None:
    served = Served()
    with served.running() as (matrix_url, letta_url):
        url = f"{matrix_url}/_matrix/client"
        process = start(["sync"], sync_env(url, letta_url, tmp_path / "data"), tmp_path)
        _, err = process.communicate(timeout=WAIT)

    assert process.returncode == 2
    assert f"MATRIX_HOMESERVER_URL={url}" in err.decode()
    assert "leave the path '/_matrix/client' out" in err.decode()


def test_an_unreachable_letta_is_reported_naming_the_setting(tmp_path: Path) -> None:
    served = Served()
    nowhere = f"http://127.0.0.1:{free_port()}"
    with served.running() as (matrix_url, _letta_url):
        env = sync_env(matrix_url, nowhere, tmp_path / "data")
        process = start(["sync", "--json"], env, tmp_path)
        out, err = process.communicate(timeout=WAIT)

    assert process.returncode == 1, err
    assert f"cannot reach Letta (LETTA_API_URL={nowhere})" in json.loads(out)["letta_error"]


def test_a_space_found_again_by_its_tag_is_reported_found_not_created(tmp_path: Path) -> None:
    served = Served()
    with served.running() as (matrix_url, letta_url):
        first = start(["sync", "--json"], sync_env(matrix_url, letta_url, tmp_path / "a"), tmp_path)
        made, _ = first.communicate(timeout=WAIT)
        env = sync_env(matrix_url, letta_url, tmp_path / "b")
        again = start(["sync", "--json"], env, tmp_path)
        found, _ = again.communicate(timeout=WAIT)
        human = start(["sync"], sync_env(matrix_url, letta_url, tmp_path / "c"), tmp_path)
        text, _ = human.communicate(timeout=WAIT)

    made_report, found_report = json.loads(made), json.loads(found)
    assert made_report["space_created"] is True and made_report["space_found"] is False
    assert found_report["space_created"] is False and found_report["space_found"] is True
    assert found_report["space_id"] == made_report["space_id"]
    assert f"space: {made_report['space_id']} (found again by its tag)" in text.decode()


def test_plan_against_an_unreachable_homeserver_exits_2_naming_the_setting(
    tmp_path: Path,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    process = start(["plan"], sync_env(nowhere, nowhere, tmp_path / "data"), tmp_path)
    _, err = process.communicate(timeout=WAIT)

    assert process.returncode == 2
    assert f"MATRIX_HOMESERVER_URL={nowhere}" in err.decode()


def test_an_error_into_a_closed_stderr_pipe_keeps_the_setup_exit_code(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    process = start(["sync"], sync_env(nowhere, nowhere, tmp_path / "data"), tmp_path)
    assert process.stderr is not None and process.stdout is not None
    process.stderr.close()  # `sync 2>&1 | head -0`: nobody reads the error line

    assert process.wait(timeout=WAIT) == 2
    process.stdout.close()
