"""The fake homeserver's application-service API (tests/contract checks the same on Synapse)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.identity.registration import (
    AppserviceRegistration,
    load_registration,
    new_registration,
    render,
    write_private,
)
from app.testing.fake_http import FakeResponse
from app.testing.homeserver import FakeHomeserver

from helpers import req

V3 = "/_matrix/client/v3"
AGENT = "agent_0f0f0f0f_1111_2222_3333_444444444444"


@pytest.fixture
def registration(tmp_path: Path) -> AppserviceRegistration:
    path = tmp_path / "registration.yaml"
    write_private(path, render(new_registration("localhost", "letta", "admin")))
    return load_registration(path)


@pytest.fixture
def hs(registration: AppserviceRegistration) -> FakeHomeserver:
    homeserver = FakeHomeserver(seed=1)
    homeserver.load_appservice(registration)
    homeserver.close_registration()
    return homeserver


def as_register(hs: FakeHomeserver, token: str, username: str) -> FakeResponse:
    body = {"type": "m.login.application_service", "username": username, "inhibit_login": True}
    return req(hs, "POST", f"{V3}/register", token, body)


def test_the_sender_exists_and_the_as_token_acts_as_it(
    hs: FakeHomeserver, registration: AppserviceRegistration
) -> None:
    assert hs.has_user("@letta:localhost")
    whoami = req(hs, "GET", f"{V3}/account/whoami", registration.as_token)
    assert whoami.status == 200 and whoami.json["user_id"] == "@letta:localhost"


def test_appservice_registration_makes_a_user_without_device_or_token(
    hs: FakeHomeserver, registration: AppserviceRegistration
) -> None:
    made = as_register(hs, registration.as_token, AGENT)
    again = as_register(hs, registration.as_token, AGENT)

    assert made.status == 200 and "access_token" not in made.json
    assert made.json["user_id"] == f"@{AGENT}:localhost"
    assert hs.devices(f"@{AGENT}:localhost") == [] and hs.devices_created == 0
    assert (again.status, again.json["errcode"]) == (400, "M_USER_IN_USE")


def test_appservice_registration_outside_the_namespace_or_with_another_token(
    hs: FakeHomeserver, registration: AppserviceRegistration
) -> None:
    outside = as_register(hs, registration.as_token, "alice")
    unknown = as_register(hs, "not-the-as-token", AGENT)

    assert (outside.status, outside.json["errcode"]) == (400, "M_EXCLUSIVE")
    assert (unknown.status, unknown.json["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert not hs.has_user("@alice:localhost") and not hs.has_user(f"@{AGENT}:localhost")


def test_user_id_assertion_inside_and_outside_the_namespace(
    hs: FakeHomeserver, registration: AppserviceRegistration
) -> None:
    token = registration.as_token
    unregistered = req(
        hs, "GET", f"{V3}/account/whoami", token, query={"user_id": f"@{AGENT}:localhost"}
    )
    as_register(hs, token, AGENT)
    registered = req(
        hs, "GET", f"{V3}/account/whoami", token, query={"user_id": f"@{AGENT}:localhost"}
    )
    hs.register_user("alice", "pw")
    outside = req(hs, "GET", f"{V3}/account/whoami", token, query={"user_id": "@alice:localhost"})

    assert (unregistered.status, unregistered.json["errcode"]) == (403, "M_FORBIDDEN")
    assert registered.status == 200 and registered.json["user_id"] == f"@{AGENT}:localhost"
    assert (outside.status, outside.json["errcode"]) == (403, "M_FORBIDDEN")
    assert "cannot masquerade" in outside.json["error"]


def test_a_normal_registration_in_the_exclusive_namespace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registration.yaml"
    write_private(path, render(new_registration("localhost", "letta", "admin")))
    hs = FakeHomeserver(seed=1)
    hs.load_appservice(load_registration(path))  # registration left open
    body = {"username": AGENT, "password": "pw", "auth": {"type": "m.login.dummy"}}

    refused = req(hs, "POST", f"{V3}/register", json=body)
    available = req(hs, "GET", f"{V3}/register/available", query={"username": AGENT})
    someone_else = req(hs, "POST", f"{V3}/register", json={**body, "username": "alice"})

    assert (refused.status, refused.json["errcode"]) == (400, "M_EXCLUSIVE")
    assert (available.status, available.json["errcode"]) == (400, "M_EXCLUSIVE")
    assert someone_else.status == 200


def test_closed_registration_refuses_everyone_but_the_appservice(hs: FakeHomeserver) -> None:
    body = {"username": "alice", "password": "pw", "auth": {"type": "m.login.dummy"}}
    refused = req(hs, "POST", f"{V3}/register", json=body)
    available = req(hs, "GET", f"{V3}/register/available", query={"username": "alice"})
    assert (refused.status, refused.json["errcode"]) == (403, "M_FORBIDDEN")
    assert (available.status, available.json["errcode"]) == (403, "M_FORBIDDEN")


def test_appservice_users_cannot_log_in_with_any_password(
    hs: FakeHomeserver, registration: AppserviceRegistration
) -> None:
    as_register(hs, registration.as_token, AGENT)
    for password in ("", "guess"):
        body = {"type": "m.login.password", "user": AGENT, "password": password}
        assert req(hs, "POST", f"{V3}/login", json=body).status == 403
    assert hs.logins == 0
