"""`letta-matrix-sync doctor` on the stateful fakes: every check passes on a sound setup, in
both identity modes; each misconfiguration fails with its own line and fix; nothing is
written, on the homeserver or on disk."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import httpx
import pytest
import yaml

from app.cli import main
from app.testing.clock import FakeClock
from app.testing.harness import SyncHarness

from helpers import cli_env


@pytest.fixture
def harness(tmp_path: Path) -> SyncHarness:
    return SyncHarness(tmp_path / "data")


def doctor(h: SyncHarness, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The exit code, and each check's line by its name."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["doctor"], env=env, transport=h.transport(), out=out, err=err)
    assert err.getvalue() == "", err.getvalue()
    lines = out.getvalue().splitlines()
    found = {}
    for line in lines[:-1]:
        name, _, detail = line[6:].partition(": ")
        found[name] = f"{line[:4].strip()} {detail}"
    assert lines[-1].endswith(f"{sum(v.startswith('FAIL') for v in found.values())} failed")
    return code, found


def failed(found: dict[str, str]) -> dict[str, str]:
    return {name: line for name, line in found.items() if line.startswith("FAIL")}


def cli_sync(h: SyncHarness) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["sync", "--json"], env=cli_env(h), transport=h.transport(), out=out, err=err)
    assert code == 0, err.getvalue()


def sound_appservice(h: SyncHarness) -> dict[str, str]:
    h.use_appservice()
    h.letta.add_agent("Synced")
    cli_sync(h)
    h.homeserver.make_server_admin(h.admin_id)
    h.letta.add_agent("New")
    return cli_env(h)


def test_a_sound_appservice_setup_passes_every_check_and_writes_nothing(
    harness: SyncHarness,
) -> None:
    h = harness
    env = sound_appservice(h)
    files = sorted(os.listdir(h.data_dir))
    sent = len(h.router.calls)

    code, found = doctor(h, env)

    assert code == 0 and failed(found) == {}, found
    assert set(found) >= {
        "settings",
        "run settings",
        "Letta",
        "store",
        "homeserver",
        "appservice registration",
        "appservice namespace",
        "admin is a server admin",
        "rate limits",
    }
    assert "covers the admin and every agent user (3 users)" in found["appservice namespace"]
    assert found["rate limits"] == "ok the appservice's users are exempt (rate_limited: false)"
    assert found["store"] == f"ok MATRIX_DATA_DIR={h.data_dir}: 1 agents recorded"
    assert writes_since(h, sent) == [] and sorted(os.listdir(h.data_dir)) == files


def writes_since(h: SyncHarness, sent: int) -> list[str]:
    calls = list(h.router.calls)[sent:]
    return [f"{c.request.method} {c.request.url.path}" for c in calls if c.request.method != "GET"]


def test_a_sound_password_setup_passes(harness: SyncHarness) -> None:
    h = harness
    h.letta.add_agent("Synced")
    cli_sync(h)
    h.homeserver.make_server_admin(h.admin_id)
    sent = len(h.router.calls)

    code, found = doctor(h, cli_env(h))

    assert code == 0 and failed(found) == {}, found
    assert found["registration for new agents"].startswith("ok open")
    assert writes_since(h, sent) == []


def test_the_admin_as_the_appservice_sender_fails_the_settings_line(
    harness: SyncHarness,
) -> None:
    h = harness
    env = sound_appservice(h)
    del env["MATRIX_ADMIN_USERNAME"]
    code, found = doctor(h, env)
    assert code == 1 and list(failed(found)) == ["settings"]
    assert "MATRIX_ADMIN_USERNAME" in found["settings"]


def test_a_registration_the_homeserver_did_not_load_fails(
    harness: SyncHarness, tmp_path: Path
) -> None:
    h = harness
    env = sound_appservice(h)
    other = tmp_path / "other.yaml"
    data = yaml.safe_load(Path(env["MATRIX_APPSERVICE_REGISTRATION"]).read_text())
    other.write_text(yaml.safe_dump({**data, "as_token": "never-loaded-token-123"}))
    code, found = doctor(h, {**env, "MATRIX_APPSERVICE_REGISTRATION": str(other)})
    assert code == 1 and list(failed(found)) == ["appservice registration"]
    assert "app_service_config_files" in found["appservice registration"]
    assert "never-loaded-token-123" not in str(found)


def test_a_namespace_without_the_admin_or_the_agents_fails(
    harness: SyncHarness, tmp_path: Path
) -> None:
    h = harness
    env = sound_appservice(h)
    path = Path(env["MATRIX_APPSERVICE_REGISTRATION"])
    data = yaml.safe_load(path.read_text())
    data["namespaces"]["users"] = [{"exclusive": True, "regex": "@bridge_.*"}]
    path.write_text(yaml.safe_dump(data))
    code, found = doctor(h, env)
    assert code == 1 and "appservice namespace" in failed(found)
    assert "MATRIX_ADMIN_USERNAME" in found["appservice namespace"]


def test_an_admin_that_is_no_server_admin_fails(harness: SyncHarness) -> None:
    h = harness
    h.use_appservice()
    h.letta.add_agent("Synced")
    cli_sync(h)
    code, found = doctor(h, cli_env(h))
    assert code == 1 and list(failed(found)) == ["admin is a server admin"]
    assert '{"admin": true}' in found["admin is a server admin"]


def test_a_rate_limited_registration_fails(harness: SyncHarness) -> None:
    h = harness
    env = sound_appservice(h)
    path = Path(env["MATRIX_APPSERVICE_REGISTRATION"])
    path.write_text(path.read_text().replace("rate_limited: false", "rate_limited: true"))
    code, found = doctor(h, env)
    assert code == 1 and list(failed(found)) == ["rate limits"]


def test_password_mode_on_a_closed_homeserver_with_new_agents_fails(
    harness: SyncHarness,
) -> None:
    h = harness
    h.letta.add_agent("Synced")
    cli_sync(h)
    h.homeserver.make_server_admin(h.admin_id)
    h.homeserver.close_registration()
    code, quiet = doctor(h, cli_env(h))
    assert code == 0
    assert quiet["registration for new agents"] == (
        "ok registration is closed, and no agent needs a new user now"
    )
    h.letta.add_agent("New")
    code, found = doctor(h, cli_env(h))
    assert code == 1 and list(failed(found)) == ["registration for new agents"]
    assert "1 Letta agents need a user" in found["registration for new agents"]


def test_a_wrong_homeserver_url_fails_and_skips_what_needs_it(harness: SyncHarness) -> None:
    h = harness
    h.override("versions", httpx.Response(404, text="<html>not found</html>"))
    code, found = doctor(h, cli_env(h))
    assert code == 1 and list(failed(found)) == ["homeserver"]
    assert "MATRIX_HOMESERVER_URL" in found["homeserver"]


def test_a_refused_letta_token_fails(harness: SyncHarness) -> None:
    h = harness
    h.override("list_agents", httpx.Response(401, json={"detail": "bad token"}))
    code, found = doctor(h, cli_env(h, LETTA_TOKEN="wrong-letta-token"))
    assert code == 1 and "Letta" in failed(found)
    assert "LETTA_TOKEN" in found["Letta"] and "wrong-letta-token" not in str(found)


def test_a_data_directory_under_a_file_fails(harness: SyncHarness, tmp_path: Path) -> None:
    h = harness
    (tmp_path / "notes.txt").write_text("a file, not a directory")
    code, found = doctor(h, cli_env(h, MATRIX_DATA_DIR=str(tmp_path / "notes.txt" / "data")))
    assert code == 1 and "store" in failed(found) and "MATRIX_DATA_DIR" in found["store"]
    assert "not a directory" in found["store"]


def test_a_public_listen_address_without_a_webhook_token_fails(harness: SyncHarness) -> None:
    h = harness
    code, found = doctor(h, cli_env(h, LISTEN_ADDRESS="0.0.0.0:9464"))
    assert code == 1 and "run settings" in failed(found)
    assert "SYNC_WEBHOOK_TOKEN" in found["run settings"]
    code, guarded = doctor(
        h, cli_env(h, LISTEN_ADDRESS="0.0.0.0:9464", SYNC_WEBHOOK_TOKEN="t" * 32)
    )
    assert "run settings" not in failed(guarded)


def test_before_the_first_sync_the_admin_check_says_what_to_do_next(harness: SyncHarness) -> None:
    """Appservice mode registers the admin at the first sync: until then doctor cannot ask
    whether it is a server admin, and says so without failing."""
    h = harness
    h.use_appservice()
    code, found = doctor(h, cli_env(h))
    assert code == 0 and failed(found) == {}, found
    assert found["admin is a server admin"].startswith("skip ")
    assert "the first sync registers it" in found["admin is a server admin"]


def test_doctor_json_is_one_object_with_every_check(harness: SyncHarness) -> None:
    h = harness
    out = io.StringIO()
    code = main(["doctor", "--json"], env=cli_env(h), transport=h.transport(), out=out)
    data = json.loads(out.getvalue())
    assert code == 0 and data["ok"] is True
    names = [check["name"] for check in data["checks"]]
    assert "homeserver" in names and {c["status"] for c in data["checks"]} <= {"ok", "skip"}


def doctor_text(h: SyncHarness, env: dict[str, str]) -> tuple[int, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["doctor"], env=env, transport=h.transport(), out=out, err=err)
    return code, out.getvalue().replace(str(h.data_dir), "<data>").splitlines()


def test_the_whole_report_of_a_sound_appservice_setup_reads_as_documented(
    harness: SyncHarness,
) -> None:
    """Every line an operator reads, word for word."""
    code, lines = doctor_text(harness, sound_appservice(harness))

    assert code == 0
    assert lines == [
        "ok    settings: read without error",
        "ok    run settings: 127.0.0.1:9464; POST /sync takes loopback only",
        "ok    Letta: http://localhost:8283 answers with the token given "
        "(last agent change 2025-01-01 00:00)",
        "ok    store: MATRIX_DATA_DIR=<data>: 1 agents recorded",
        "ok    homeserver: http://localhost:8008 speaks Matrix (newest spec version v1.11)",
        "ok    appservice registration: loaded by the homeserver; sender @letta:localhost",
        "ok    appservice namespace: covers the admin and every agent user (3 users)",
        "ok    admin is a server admin: @admin:localhost may use the admin API",
        "ok    rate limits: the appservice's users are exempt (rate_limited: false)",
        "9 checks, 0 failed",
    ]


def test_the_whole_report_of_a_closed_password_setup_names_the_fix(harness: SyncHarness) -> None:
    h = harness
    h.letta.add_agent("Synced")
    cli_sync(h)
    h.homeserver.make_server_admin(h.admin_id)
    h.homeserver.close_registration()
    h.letta.add_agent("New")

    code, lines = doctor_text(h, cli_env(h))

    assert code == 1
    assert lines[3:] == [
        "ok    store: MATRIX_DATA_DIR=<data>: 1 agents recorded",
        "ok    homeserver: http://localhost:8008 speaks Matrix (newest spec version v1.11)",
        "FAIL  registration for new agents: registration is closed on this homeserver, and 1 "
        "Letta agents need a user: password mode registers them (m.login.dummy), so open "
        "registration to it or use appservice mode (MATRIX_APPSERVICE_REGISTRATION)",
        "ok    admin is a server admin: @admin:localhost may use the admin API",
        "7 checks, 1 failed",
    ]


def test_the_newest_spec_version_is_compared_by_number_not_text(harness: SyncHarness) -> None:
    h = harness
    h.override("versions", httpx.Response(200, json={"versions": ["r0.6.1", "v1.11", "v1.2"]}))

    _, found = doctor(h, cli_env(h))

    assert found["homeserver"].endswith("(newest spec version v1.11)")


def test_a_store_that_cannot_be_opened_fails_its_own_line(
    harness: SyncHarness, tmp_path: Path
) -> None:
    h = harness
    h.data_dir.mkdir(parents=True)
    (h.data_dir / "agent_user_mappings.json").write_text("{not json")

    code, found = doctor(h, cli_env(h))

    assert code == 1 and list(failed(found)) == ["store"]


def test_an_unknown_event_loop_for_run_fails_the_run_line(harness: SyncHarness) -> None:
    code, found = doctor(harness, cli_env(harness, SYNC_BACKEND="curio"))

    assert code == 1 and list(failed(found)) == ["run settings"]
    assert "SYNC_BACKEND must be asyncio or trio" in found["run settings"]


def test_a_registration_file_that_cannot_be_read_fails_its_own_line(
    harness: SyncHarness, tmp_path: Path
) -> None:
    broken = tmp_path / "registration.yaml"
    broken.write_text("id: [unclosed")
    env = cli_env(harness, MATRIX_APPSERVICE_REGISTRATION=str(broken), MATRIX_PASSWORD="")

    code, found = doctor(harness, env)

    assert code == 1 and "appservice registration" in failed(found)
    assert "not valid YAML" in found["appservice registration"]


def test_a_homeserver_that_lists_no_spec_version_says_none(harness: SyncHarness) -> None:
    harness.override("versions", httpx.Response(200, json={"versions": []}))

    _, found = doctor(harness, cli_env(harness))

    assert found["homeserver"].endswith("(newest spec version none)")


def test_a_public_address_with_a_webhook_token_passes_and_says_how_it_is_guarded(
    harness: SyncHarness,
) -> None:
    env = cli_env(harness, LISTEN_ADDRESS="0.0.0.0:9464", SYNC_WEBHOOK_TOKEN="long-random-token")

    _, found = doctor(harness, env)

    assert found["run settings"] == "ok 0.0.0.0:9464; POST /sync takes a bearer token"


def test_doctor_json_with_a_failed_check_is_indented_not_ok_and_exits_1(
    harness: SyncHarness,
) -> None:
    h = harness
    h.override("versions", httpx.Response(404, text="<html>not found</html>"))
    out = io.StringIO()

    code = main(["doctor", "--json"], env=cli_env(h), transport=h.transport(), out=out)

    data = json.loads(out.getvalue())
    assert code == 1 and data["ok"] is False
    assert out.getvalue().startswith('{\n  "ok": false,\n  "checks": [')
    failed_checks = [c for c in data["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed_checks] == ["homeserver"]


def test_doctor_with_its_own_transport_says_which_servers_are_down(tmp_path: Path) -> None:
    """No transport given: doctor makes its own (and closes it). Nothing listens on port 1;
    its retries wait on a fake clock."""
    env = {
        "MATRIX_HOMESERVER_URL": "http://127.0.0.1:1",
        "MATRIX_USERNAME": "letta",
        "MATRIX_PASSWORD": "pw",
        "LETTA_API_URL": "http://127.0.0.1:1",
        "MATRIX_DATA_DIR": str(tmp_path / "data"),
    }
    out, err = io.StringIO(), io.StringIO()
    clock = FakeClock()

    code = main(["doctor"], env=env, out=out, err=err, pacing=clock.pacing())

    lines = out.getvalue().splitlines()
    assert code == 1 and err.getvalue() == ""
    assert any(
        line.startswith("FAIL  Letta: LETTA_API_URL=http://127.0.0.1:1 cannot be read: ")
        for line in lines
    )
    assert any(
        line.startswith(
            "FAIL  homeserver: MATRIX_HOMESERVER_URL=http://127.0.0.1:1 does not answer"
        )
        for line in lines
    )
