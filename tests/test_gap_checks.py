"""Behaviours a mutation sample found untested: each asserts what a user or a bridge sees."""

from __future__ import annotations

import io
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import SyncConfig, run_agent_sync
from app.cli import main
from app.cli.commands import show_status
from app.errors import ConfigError, MatrixError, SyncError
from app.letta.listing import MAX_PAGES, Walk
from app.state import AgentMapping, JsonFileStore, MappingStore
from app.state.store import MAPPINGS_FILE
from app.testing.harness import SyncHarness

from helpers import cli_env


@pytest.mark.anyio
async def test_a_letta_url_ending_in_v1_gets_the_hint_to_leave_it_out(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    wrong = h.config().letta_url.rstrip("/") + "/v1"
    # Letta's own answer to a path it does not serve: 404 with FastAPI's detail.
    h.router.get(url__startswith=f"{wrong}/v1/").respond(404, json={"detail": "Not Found"})
    with pytest.raises(ConfigError) as caught:
        await h.sync(letta_url=wrong)
    assert "(leave /v1 out of LETTA_API_URL)" in str(caught.value)


def test_a_record_keeps_the_agent_id_it_names_and_falls_back_to_its_key() -> None:
    named = AgentMapping.from_json("key-id", {"agent_id": "agent-real", "agent_name": "A"})
    unnamed = AgentMapping.from_json("key-id", {"agent_id": "", "agent_name": "B"})
    assert (named.agent_id, unnamed.agent_id) == ("agent-real", "key-id")


def test_a_token_saved_in_the_journal_keeps_its_device_after_a_restart(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    store.save_token("@bot:hs", "syt_token", "DEVICE42")
    # No close(): the process "dies" here; only the journal holds the token.
    again = MappingStore.open(tmp_path)
    token = again.token("@bot:hs")
    assert token is not None and (token.access_token, token.device_id) == ("syt_token", "DEVICE42")


def test_the_state_files_keep_names_readable_not_escaped(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    store.save_mapping(AgentMapping("agent-1", "Ünïcødé 🤖", "@agent_1:hs", "pw"))
    store.compact()
    store.close()
    text = (tmp_path / MAPPINGS_FILE).read_text(encoding="utf-8")
    assert "Ünïcødé 🤖" in text and "\\u" not in text
    assert json.loads(text)["agent-1"]["agent_name"] == "Ünïcødé 🤖"


def plan_json(h: SyncHarness) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", "--json"], env=cli_env(h), transport=h.transport(), out=out, err=err)
    assert code == 0, err.getvalue()
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def cli_sync(h: SyncHarness) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["sync"], env=cli_env(h), transport=h.transport(), out=out, err=err) == 0


def test_plan_names_each_agent_as_letta_does(tmp_path: Path) -> None:
    h = SyncHarness(tmp_path / "data")
    kept = h.letta.add_agent("Kept")
    cli_sync(h)
    new = h.letta.add_agent("Brand new")
    names = {row["agent_id"]: row["agent_name"] for row in plan_json(h)["actions"]}
    assert names == {kept: "Kept", new: "Brand new"}


def test_an_appservice_plan_on_a_lost_data_dir_names_the_room_it_finds_again(
    tmp_path: Path,
) -> None:
    h = SyncHarness(tmp_path / "data")
    h.use_appservice()
    agent = h.letta.add_agent("Adopted")
    cli_sync(h)
    room = json.loads((h.data_dir / MAPPINGS_FILE).read_text())[agent]["room_id"]
    shutil.rmtree(h.data_dir)
    (row,) = plan_json(h)["actions"]
    assert (row["action"], row["detail"]) == ("ok", f"found again: room {room}")


@pytest.mark.anyio
async def test_a_server_that_invents_pages_forever_gives_an_incomplete_listing() -> None:
    counter = itertools.count()

    async def endless(path: str, query: dict[str, str]) -> list[dict[str, str]]:
        number = next(counter)
        return [{"id": f"agent-{number}", "name": f"Agent {number}"}]

    walk = await Walk(expected=None, page_size=1).run(endless)
    assert walk.pages == MAX_PAGES
    assert walk.incomplete == f"the listing stopped after {MAX_PAGES} pages"


class OldBridgeConfig:
    """The old bridge's config object, as `run_agent_sync(config)` was called with."""

    def __init__(self, h: SyncHarness) -> None:
        env = cli_env(h)
        self.homeserver_url = env["MATRIX_HOMESERVER_URL"]
        self.username = env["MATRIX_USERNAME"]
        self.password = env["MATRIX_PASSWORD"]
        self.letta_api_url = env["LETTA_API_URL"]
        self.letta_token = "letta-secret"
        self.log_level = "WARNING"


def test_the_old_bridges_config_object_fills_what_it_has_and_the_environment_the_rest(
    tmp_path: Path,
) -> None:
    h = SyncHarness(tmp_path / "data")
    old = OldBridgeConfig(h)
    rest = {"MATRIX_DATA_DIR": str(h.data_dir), "MATRIX_ADMIN_USERNAME": "admin"}
    config = SyncConfig.from_legacy(old, env={**rest, "MATRIX_USERNAME": "overridden"})
    assert (config.homeserver_url, config.username, config.password) == (
        old.homeserver_url,
        old.username,
        old.password,
    )
    assert (config.letta_url, config.letta_token, config.log_level) == (
        old.letta_api_url,
        "letta-secret",
        "WARNING",
    )
    assert config.data_dir == h.data_dir and config.admin_user == "admin"


@pytest.mark.anyio
async def test_run_agent_sync_with_the_old_bridges_config_syncs(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent = h.letta.add_agent("Legacy")
    old = OldBridgeConfig(h)
    old.letta_token = ""  # the fake Letta takes none
    os_env = {"MATRIX_DATA_DIR": str(h.data_dir), "MATRIX_ADMIN_USERNAME": "admin"}
    config = SyncConfig.from_legacy(old, env={**os_env, "MATRIX_ADMIN_PASSWORD": "admin-pw"})
    report = await run_agent_sync(config, h.transport())
    assert report.ok and report.rooms_created == [agent]


def test_a_room_name_template_may_index_the_name() -> None:
    config = SyncConfig.from_env(
        {**cli_env_minimal(), "ROOM_NAME_TEMPLATE": "{name[0]}: {agent_id}"}
    )
    assert config.room_name_template == "{name[0]}: {agent_id}"


def cli_env_minimal() -> dict[str, str]:
    return {
        "MATRIX_HOMESERVER_URL": "http://localhost:8008",
        "MATRIX_USERNAME": "letta",
        "MATRIX_PASSWORD": "pw",
        "LETTA_API_URL": "http://localhost:8283",
    }


def test_status_columns_line_up_whatever_the_lengths(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    for agent_id, name in (("agent-with-a-long-id", "A"), ("a2", "A much longer name")):
        mapping = AgentMapping(agent_id, name, f"@{agent_id}:hs", "pw", True, f"!{agent_id}:hs")
        store.save_mapping(mapping)
    store.compact()
    store.close()
    out = io.StringIO()
    show_status(tmp_path, False, out, JsonFileStore.read(tmp_path))
    rows = [line for line in out.getvalue().splitlines() if ":hs" in line]
    starts = {line.index("!") for line in rows}
    assert len(rows) == 2 and len(starts) == 1  # every room id starts in the same column
    assert out.getvalue().splitlines()[3:] == [
        "    agent id              name                room",
        "!!  agent-with-a-long-id  A                   !agent-with-a-long-id:hs",
        "!!  a2                    A much longer name  !a2:hs",
    ]


@pytest.mark.parametrize("given", ["5000", True, 1.5])
def test_a_retry_hint_that_is_not_a_whole_number_is_ignored(given: object) -> None:
    body = json.dumps({"errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": given})

    error = MatrixError.from_response(429, body.encode())

    assert error.retry_after_ms is None
    assert (
        MatrixError.from_response(
            429, body.replace(json.dumps(given), "5000").encode()
        ).retry_after_ms
        == 5000
    )


def test_a_wrong_letta_url_and_log_level_are_named(tmp_path: Path) -> None:
    base = {**cli_env_minimal(), "MATRIX_DATA_DIR": str(tmp_path)}

    with pytest.raises(ConfigError) as url:
        SyncConfig.from_env({**base, "LETTA_API_URL": "ftp://letta"})
    with pytest.raises(ConfigError) as level:
        SyncConfig.from_env({**base, "LOG_LEVEL": "LOUD"})

    assert str(url.value) == (
        "LETTA_API_URL must be an http(s) URL such as http://localhost:8008, got 'ftp://letta'"
    )
    assert str(level.value) == "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"


@pytest.mark.anyio
async def test_a_letta_url_without_v1_that_is_not_letta_gets_no_hint(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    wrong = "http://localhost:8283/elsewhere"
    h.router.get(url__startswith=f"{wrong}/v1/").respond(404, json={"detail": "Not Found"})

    with pytest.raises(ConfigError) as caught:
        await h.sync(letta_url=wrong)

    assert str(caught.value) == (
        f"LETTA_API_URL={wrong} does not answer like a Letta server (HTTP 404)"
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"HTTP_TIMEOUT": "0"}, "HTTP_TIMEOUT must be a positive number of seconds"),
        ({"RETRY_BUDGET": "-1"}, "RETRY_BUDGET must be a number of seconds, 0 or more"),
        ({"FAILED_RETRY_MAX": "inf"}, "FAILED_RETRY_MAX must be a number of seconds, 0 or more"),
        (
            {"MATRIX_MCP_USERNAME": "mcp"},
            "MATRIX_MCP_USERNAME and MATRIX_MCP_PASSWORD must be set together",
        ),
        ({"HISTORY_IMPORT_LIMIT": "-1"}, "HISTORY_IMPORT_LIMIT must be 0 or more"),
        ({"SYNC_CONCURRENCY": "0"}, "SYNC_CONCURRENCY must be 1 or more"),
    ],
)
def test_each_wrong_setting_is_refused_in_its_own_words(
    setting: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        SyncConfig.from_env({**cli_env_minimal(), "MATRIX_DATA_DIR": str(tmp_path), **setting})

    assert str(caught.value).startswith(message)


def test_a_config_built_in_code_without_a_password_says_what_else_would_do() -> None:
    """The bridge builds its SyncConfig itself: the same rule, in the same words."""
    with pytest.raises(ConfigError) as caught:
        SyncConfig("http://localhost:8008", "letta", "", "http://localhost:8283")

    assert str(caught.value) == (
        "MATRIX_PASSWORD is required unless MATRIX_APPSERVICE_REGISTRATION names an "
        "appservice registration"
    )


@pytest.mark.parametrize("admin", [None, "letta", "@letta:localhost"])
def test_appservice_mode_refuses_an_admin_that_is_the_sender_in_full(
    admin: str | None, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        SyncConfig(
            "http://localhost:8008",
            "letta",
            "",
            "http://localhost:8283",
            admin_username=admin,
            appservice_registration=tmp_path / "registration.yaml",
        )

    assert str(caught.value) == (
        "appservice mode needs MATRIX_ADMIN_USERNAME, a user other than the appservice's "
        "sender (MATRIX_USERNAME=letta): the homeserver cannot serve the sender's /sync. "
        "Set it (admin, say), and list it in the registration's namespace (`letta-matrix-sync "
        "registration` does so)"
    )


@pytest.mark.anyio
async def test_a_homeserver_url_that_redirects_is_a_setup_error_naming_the_setting(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.override("register", httpx.Response(301, headers={"Location": "https://matrix.example.org/"}))

    with pytest.raises(ConfigError) as caught:
        await h.sync()

    assert str(caught.value) == (
        "MATRIX_HOMESERVER_URL=http://localhost:8008 answered HTTP 301, a redirect, which the "
        "library does not follow: set the URL the homeserver answers at itself"
    )


@pytest.mark.anyio
async def test_a_letta_url_that_redirects_is_a_setup_error_naming_the_setting(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.letta.add_agent("Behind a proxy")
    h.override("list_agents", httpx.Response(307, headers={"Location": "https://letta/"}))

    with pytest.raises(ConfigError) as caught:
        await h.sync()

    assert str(caught.value).startswith("LETTA_API_URL=http://localhost:8283 answered HTTP 307")
    assert str(caught.value).endswith(
        "set the address the Letta server answers at itself (https:// behind a TLS proxy?)"
    )


def test_a_service_not_opened_says_how_to_open_it(sync_harness: SyncHarness) -> None:
    service = sync_harness.service()

    with pytest.raises(SyncError) as caught:
        _ = service.store

    assert str(caught.value) == "SyncService is not open: use `async with SyncService(config)`"
