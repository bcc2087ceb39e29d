"""`letta-matrix-sync registration` and reading the file back (MATRIX_APPSERVICE_REGISTRATION)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.cli import main
from app.errors import ConfigError
from app.identity.naming import agent_localpart
from app.identity.registration import UserNamespace, load_registration, new_registration
from app.testing.harness import SyncHarness

from helpers import cli_env

pytestmark = pytest.mark.anyio

NAMES = {"MATRIX_USERNAME": "letta", "MATRIX_ADMIN_USERNAME": "admin"}


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_prints_a_registration_on_stdout_and_the_homeserver_line_on_stderr() -> None:
    code, out, err = run(["registration", "--server-name", "example.org"], NAMES)
    _, again, _ = run(["registration", "--server-name", "example.org"], NAMES)

    assert code == 0
    data = yaml.safe_load(out)
    assert data["url"] is None and data["rate_limited"] is False
    assert data["sender_localpart"] == "letta"
    assert yaml.safe_load(again)["as_token"] != data["as_token"]  # fresh random tokens
    assert data["as_token"] != data["hs_token"] and len(data["as_token"]) >= 32
    users = data["namespaces"]["users"]
    assert all(entry["exclusive"] is True for entry in users)
    assert "app_service_config_files:" in err and data["as_token"] not in err


def test_output_file_is_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "registration.yaml"
    code, out, err = run(
        ["registration", "--server-name", "localhost", "--output", str(path)], NAMES
    )
    first = path.read_text()
    again, _, refused = run(
        ["registration", "--server-name", "localhost", "--output", str(path)], NAMES
    )

    assert code == 0 and out == ""
    assert f"app_service_config_files: [{path.resolve()}]" in err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert again == 2 and "already exists" in refused and path.read_text() == first


def test_namespace_covers_agents_and_the_admin_of_this_server_only(tmp_path: Path) -> None:
    def namespace(admin: str) -> tuple[bool, bool]:
        path = tmp_path / f"{admin.strip('@').replace(':', '_')}.yaml"
        env = {"MATRIX_USERNAME": "@letta:example.org", "MATRIX_ADMIN_USERNAME": admin}
        argv = ["registration", "--server-name", "example.org", "--output", str(path)]
        assert run(argv, env)[0] == 0
        registration = load_registration(path)
        admin_id = admin if admin.startswith("@") else f"@{admin}:example.org"
        return registration.covers(admin_id), registration.covers("@alice:example.org")

    assert namespace("admin") == (True, False)
    assert namespace("@root:example.org") == (True, False)
    assert namespace("@root:elsewhere.org") == (False, False)


NAMESPACE = [
    UserNamespace(entry["regex"], entry["exclusive"])
    for entry in new_registration("example.org", "letta", "admin")["namespaces"]["users"]
]


@given(st.text(min_size=1, max_size=60))
def test_every_agent_user_of_a_letta_id_is_in_the_namespace(suffix: str) -> None:
    for agent_id in (f"agent-{suffix}", suffix):
        localpart = agent_localpart(agent_id)
        covered = any(ns.matches(f"@{localpart}:example.org") for ns in NAMESPACE)
        # Letta's ids and every hashed form are covered; only a readable id of another
        # shape (`foo`) is not, and the sync refuses it by name.
        assert covered or ("." not in localpart and not localpart.startswith("agent_"))
        assert not any(ns.matches(f"@{localpart}:other.org") for ns in NAMESPACE)


def test_needs_the_bot_name_and_a_plain_server_name() -> None:
    code, _, err = run(["registration", "--server-name", "example.org"], {})
    assert code == 2
    assert "MATRIX_USERNAME is required: the bot is the appservice's sender" in err
    code, _, err = run(["registration", "--server-name", "https://example.org"], NAMES)
    assert code == 2 and "--server-name" in err
    code, _, err = run(
        ["registration", "--server-name", "example.org"], {"MATRIX_USERNAME": "@letta:other.org"}
    )
    assert code == 2 and "MATRIX_USERNAME" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("id: [unclosed", "not valid YAML"),
        ("- a list", "does not hold a registration"),
        ("id: x\nas_token: a\nhs_token: b\nnamespaces: {users: []}\n", "sender_localpart"),
        (
            "id: x\nas_token: a\nhs_token: b\nsender_localpart: letta\nnamespaces: {}\n",
            "namespaces.users",
        ),
        (
            "id: x\nas_token: a\nhs_token: b\nsender_localpart: l\n"
            "namespaces: {users: [{regex: '(', exclusive: true}]}\n",
            "invalid",
        ),
    ],
)
def test_a_bad_registration_file_is_a_setup_error_naming_the_setting(
    content: str | None, expected: str, sync_harness: SyncHarness
) -> None:
    path = sync_harness.data_dir.parent / "registration.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=expected):
        load_registration(path)
    env = cli_env(sync_harness, MATRIX_APPSERVICE_REGISTRATION=str(path), MATRIX_PASSWORD="")
    out, err = io.StringIO(), io.StringIO()
    code = main(["sync"], env=env, transport=sync_harness.transport(), out=out, err=err)
    assert code == 2
    assert "MATRIX_APPSERVICE_REGISTRATION" in err.getvalue() and expected in err.getvalue()


def test_a_directory_is_an_unreadable_registration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_registration(tmp_path)


def test_an_as_token_the_homeserver_does_not_know_is_a_setup_error(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    known = h.use_appservice()
    path = h.data_dir.parent / "other-registration.yaml"
    path.write_text(known.path.read_text().replace(known.as_token, "a-token-nobody-loaded"))
    env = cli_env(h, MATRIX_APPSERVICE_REGISTRATION=str(path), MATRIX_PASSWORD="")
    out, err = io.StringIO(), io.StringIO()

    code = main(
        ["sync"], env=env, transport=h.transport(), out=out, err=err, pacing=h.clock.pacing()
    )

    assert code == 2, err.getvalue()
    assert (
        "MATRIX_APPSERVICE_REGISTRATION" in err.getvalue()
        and "app_service_config_files" in err.getvalue()
    )
    assert "a-token-nobody-loaded" not in err.getvalue() + out.getvalue()


def test_passwords_are_optional_only_with_a_registration(sync_harness: SyncHarness) -> None:
    env = cli_env(sync_harness, MATRIX_PASSWORD="")
    code, _, err = run(["sync"], env)
    assert code == 2 and "MATRIX_PASSWORD" in err


def test_a_registration_without_a_distinct_admin_is_refused() -> None:
    code, out, err = run(
        ["registration", "--server-name", "example.org"], {"MATRIX_USERNAME": "letta"}
    )
    same, _, also = run(
        ["registration", "--server-name", "example.org"],
        {"MATRIX_USERNAME": "letta", "MATRIX_ADMIN_USERNAME": "letta"},
    )
    assert code == same == 2 and out == ""
    assert "MATRIX_ADMIN_USERNAME" in err and "MATRIX_ADMIN_USERNAME" in also


def test_a_sender_on_another_server_is_refused_with_the_reason() -> None:
    code, _, err = run(
        ["registration", "--server-name", "example.org"],
        {"MATRIX_USERNAME": "@letta:other.org", "MATRIX_ADMIN_USERNAME": "admin"},
    )

    assert code == 2
    assert (
        "MATRIX_USERNAME=@letta:other.org is on other.org, not on --server-name example.org: "
        "the appservice's sender must be a user of the homeserver that loads it"
    ) in err


def test_an_unreadable_registration_says_why(tmp_path: Path) -> None:
    binary = tmp_path / "registration.yaml"
    binary.write_bytes(b"id: \xff\xfe\n")

    with pytest.raises(ConfigError) as directory:
        load_registration(tmp_path)
    with pytest.raises(ConfigError) as not_text:
        load_registration(binary)

    assert str(directory.value).endswith("cannot be read: Is a directory")
    assert str(not_text.value) == (
        f"MATRIX_APPSERVICE_REGISTRATION={binary} cannot be read: not UTF-8 text"
    )


def test_a_server_name_with_a_port_keeps_the_localparts_whole() -> None:
    server = "example.org:8448"

    registration = new_registration(server, f"@letta:{server}", f"@admin:{server}")

    assert registration["sender_localpart"] == "letta"
    assert registration["namespaces"]["users"][1] == {
        "exclusive": True,
        "regex": r"@admin:example\.org:8448$",
    }


def test_a_registration_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "registration.yaml"
    path.write_text("id: letta\nas_token: a\nsender_localpart: [unclosed\n")

    with pytest.raises(ConfigError) as caught:
        load_registration(path)

    assert str(caught.value) == f"MATRIX_APPSERVICE_REGISTRATION={path} is not valid YAML (line 4)"
