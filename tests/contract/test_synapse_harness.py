"""Smoke test of the Synapse harness, and of the facts DESIGN.md relies on."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from app.testing.orphans import default_registry, stop_orphaned_servers
from app.testing.synapse import SynapseServer, synapse_python

CLIENT = "/_matrix/client/v3"


@pytest.fixture
def http(synapse: SynapseServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=synapse.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(synapse: SynapseServer) -> tuple[str, str]:
    return synapse.register_admin(f"admin-{uuid.uuid4().hex[:8]}", "admin-pw")


def _register(http: httpx.Client, localpart: str) -> httpx.Response:
    body = {"username": localpart, "password": "pw", "auth": {"type": "m.login.dummy"}}
    return http.post(f"{CLIENT}/register", json=body)


def test_versions_answers(synapse: SynapseServer, http: httpx.Client) -> None:
    assert synapse.base_url.startswith("http://127.0.0.1:")
    assert synapse.server_name == "localhost"
    answer = http.get("/_matrix/client/versions")
    assert answer.status_code == 200
    assert answer.json()["versions"]


def test_register_dummy_returns_token(http: httpx.Client) -> None:
    localpart = f"user-{uuid.uuid4().hex[:8]}"
    answer = _register(http, localpart)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user_id"] == f"@{localpart}:localhost"
    whoami = http.get(
        f"{CLIENT}/account/whoami",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert whoami.json()["user_id"] == body["user_id"]
    again = _register(http, localpart)
    assert (again.status_code, again.json()["errcode"]) == (400, "M_USER_IN_USE")


def test_admin_sees_devices_and_displayname(
    synapse: SynapseServer, http: httpx.Client, admin: tuple[str, str]
) -> None:
    _, admin_token = admin
    localpart = f"dev-{uuid.uuid4().hex[:8]}"
    user_id = _register(http, localpart).json()["user_id"]
    assert synapse.count_devices(user_id, admin_token) == 1
    login = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": localpart},
        "password": "pw",
    }
    assert http.post(f"{CLIENT}/login", json=login).status_code == 200
    assert synapse.count_devices(user_id, admin_token) == 2
    assert synapse.user_displayname(user_id, admin_token) == localpart


def test_admin_sees_room_state_and_members(
    synapse: SynapseServer, http: httpx.Client, admin: tuple[str, str]
) -> None:
    admin_id, admin_token = admin
    auth = {"Authorization": f"Bearer {admin_token}"}
    created = http.post(f"{CLIENT}/createRoom", json={"name": "Harness"}, headers=auth)
    room_id = created.json()["room_id"]
    state = synapse.room_state(room_id, admin_token)
    names = [e["content"]["name"] for e in state if e["type"] == "m.room.name"]
    assert names == ["Harness"]
    assert synapse.room_members(room_id, admin_token) == [admin_id]


def test_state_of_missing_room_is_403(http: httpx.Client, admin: tuple[str, str]) -> None:
    _, admin_token = admin
    missing = quote("!doesnotexist:localhost", safe="")
    answer = http.get(
        f"{CLIENT}/rooms/{missing}/state", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert (answer.status_code, answer.json()["errcode"]) == (403, "M_FORBIDDEN")


def test_register_available_reports_taken_name(http: httpx.Client) -> None:
    localpart = f"taken-{uuid.uuid4().hex[:8]}"
    url = f"{CLIENT}/register/available"
    assert http.get(url, params={"username": localpart}).json() == {"available": True}
    assert _register(http, localpart).status_code == 200
    taken = http.get(url, params={"username": localpart})
    assert (taken.status_code, taken.json()["errcode"]) == (400, "M_USER_IN_USE")


def _login(http: httpx.Client, user: str, password: str) -> httpx.Response:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    return http.post(f"{CLIENT}/login", json=body)


def test_a_deactivated_user_is_refused_like_a_wrong_password(
    synapse: SynapseServer, http: httpx.Client, admin: tuple[str, str]
) -> None:
    _, admin_token = admin
    localpart, registered = _fresh_user(http, "gone")
    _, other = _fresh_user(http, "other")
    account = _admin_path("v2/users", registered["user_id"])

    synapse.request("POST", _admin_path("v1/deactivate", registered["user_id"]), {}, admin_token)

    old_token = http.get(f"{CLIENT}/account/whoami", headers=_auth(registered["access_token"]))
    assert (old_token.status_code, old_token.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    login = _login(http, localpart, "pw")  # the right password: the hash is gone
    assert (login.status_code, login.json()) == (
        403,
        {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"},
    )
    taken = http.get(f"{CLIENT}/register/available", params={"username": localpart})
    assert taken.json()["errcode"] == "M_USER_IN_USE"
    refused = http.get(account, headers=_auth(other["access_token"]))
    assert (refused.status_code, refused.json()["error"]) == (403, "You are not a server admin")
    assert http.get(account, headers=_auth(admin_token)).json()["deactivated"] is True


def test_a_password_reset_logs_the_user_out(
    synapse: SynapseServer, http: httpx.Client, admin: tuple[str, str]
) -> None:
    _, admin_token = admin
    localpart, registered = _fresh_user(http, "reset")
    path = _admin_path("v1/reset_password", registered["user_id"])

    synapse.request("POST", path, {"new_password": "new-pw"}, token=admin_token)

    whoami = http.get(f"{CLIENT}/account/whoami", headers=_auth(registered["access_token"]))
    assert whoami.status_code == 401
    assert _login(http, localpart, "pw").status_code == 403
    assert _login(http, localpart, "new-pw").status_code == 200


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _fresh_user(http: httpx.Client, prefix: str) -> tuple[str, dict[str, str]]:
    localpart = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return localpart, dict(_register(http, localpart).json())


def _admin_path(prefix: str, user_id: str) -> str:
    return f"/_synapse/admin/{prefix}/{quote(user_id, safe='')}"


KILLED_RUN = (
    "import sys, time\n"
    "from app.testing.synapse import SynapseServer\n"
    "server = SynapseServer(sys.argv[1], python=sys.argv[2])\n"
    "server.start()\n"
    "print(server.base_url, flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.mark.child_process
def test_the_synapse_of_a_killed_run_is_stopped_by_the_next_sweep(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    """A test run killed mid-way (CI time-out, Ctrl-C twice) leaves its Synapse running; the
    next server start sweeps it. (`synapse` only for its check that Synapse runs here.)"""
    run = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "orphan"), synapse_python()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    orphan_url = run.stdout.readline().strip()
    run.send_signal(signal.SIGKILL)
    run.wait(30)
    assert orphan_url, "the killed run never reported its Synapse"
    assert httpx.get(f"{orphan_url}/_matrix/client/versions").status_code == 200  # an orphan
    [record] = default_registry().glob(f"{run.pid}-*.json")
    orphan_pid = int(record.stem.split("-")[1])

    stopped = stop_orphaned_servers()

    assert orphan_pid in stopped and not record.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{orphan_url}/_matrix/client/versions")
    assert httpx.get(f"{synapse.base_url}/_matrix/client/versions").status_code == 200
