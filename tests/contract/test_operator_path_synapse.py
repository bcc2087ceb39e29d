"""The operator's path, as the README walks it, on a Synapse shaped like production (the
registration loaded, registration closed, Synapse's default rate limits): write the
registration, load it, `doctor`, `sync`, make the admin a server admin, `doctor` again, then
`run` as a process, `/readyz`, a webhook for a new agent, and SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.cli import main
from app.testing.letta import FakeLetta
from app.testing.letta.http_server import LettaHTTPServer
from app.testing.synapse import SynapseServer
from app.testing.synapse.appservice import AppserviceSynapse

NAMES = {"MATRIX_USERNAME": "letta", "MATRIX_ADMIN_USERNAME": "admin"}


def cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def doctor_lines(env: dict[str, str]) -> tuple[int, dict[str, str]]:
    code, out, err = cli(["doctor"], env)
    assert err == "", err
    return code, {line[6:].split(": ", 1)[0]: line[:4].strip() for line in out.splitlines()[:-1]}


def ready(port: int) -> dict[str, object]:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except httpx.TransportError:
        return {}
    return dict(answer.json()) if answer.status_code == 200 else {}


def until(condition: object, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)  # a wait on real processes, not a unit test's clock
    return False


def test_the_operators_path_from_registration_to_run(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    letta = FakeLetta()
    agents = [letta.add_agent(f"Production {n}") for n in range(2)]
    registration = tmp_path / "letta.yaml"
    argv = ["registration", "--server-name", synapse.server_name, "--output", str(registration)]
    assert cli(argv, NAMES)[0] == 0
    port = _free_port()
    with (
        LettaHTTPServer(letta.handle) as http,
        AppserviceSynapse(tmp_path / "homeserver", registration) as server,
    ):
        env = {
            **NAMES,
            "MATRIX_HOMESERVER_URL": server.base_url,
            "LETTA_API_URL": http.base_url,
            "MATRIX_APPSERVICE_REGISTRATION": str(registration),
            "MATRIX_DATA_DIR": str(tmp_path / "state"),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "SYNC_INTERVAL": "30",
        }
        first_code, first = doctor_lines(env)
        code, out, sync_err = cli(["sync", "--json"], env)
        report = json.loads(out or "{}")
        _, ops_token = server.register_admin("ops", "ops-password-31c7")  # the operator
        admin_id = f"@admin:{server.server_name}"
        server.request("PUT", f"/_synapse/admin/v2/users/{admin_id}", {"admin": True}, ops_token)
        second_code, second = doctor_lines(env)

        run = subprocess.Popen(
            [sys.executable, "-m", "app", "run"],
            env={**_base_env(), **env},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "run.err").open("wb"),
        )
        try:
            assert until(lambda: ready(port).get("role") == "leader"), _tail(tmp_path)
            agents.append(letta.add_agent("Added while running"))
            hook = httpx.post(f"http://127.0.0.1:{port}/sync", timeout=5)
            assert hook.status_code == 202
            assert until(lambda: agents[-1] in _mapped(tmp_path / "state")), _tail(tmp_path)
        finally:
            run.send_signal(signal.SIGTERM)
            stopped = run.wait(60)

    assert first_code == 0 and set(first.values()) <= {"ok", "skip"}, first
    assert first["admin is a server admin"] == "skip"
    assert code == 0 and report["ok"], sync_err
    assert sorted(report["users_created"]) == sorted(agents[:2])
    assert second_code == 0 and set(second.values()) == {"ok"}, second
    assert stopped == 0 and "sync done in" in _tail(tmp_path)


def _mapped(data_dir: Path) -> set[str]:
    path = data_dir / "agent_user_mappings.json"
    if not path.exists():
        return set()
    return {agent for agent, m in json.loads(path.read_text()).items() if m.get("room_id")}


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "run.err").read_text(errors="replace")[-3000:]


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    return {key: os.environ[key] for key in keep if key in os.environ}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
