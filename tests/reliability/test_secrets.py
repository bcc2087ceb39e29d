"""Secrets never leak into logs, reports, exception messages or reprs; state files are private."""

from __future__ import annotations

import json
import logging
import os
import stat
import traceback
from pathlib import Path

import pytest
from reliability_support import (
    HTML_PAGE,
    harness_with_door,
    mappings_on_disk,
    read_timeout,
    refuse,
    respond,
    tokens_on_disk,
)

from app import SyncError, SyncReport
from app.http.transport import Request
from app.matrix import Credentials, LoginResult
from app.state import MappingStore
from app.state.store import JOURNAL_FILE, MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE, StoredToken
from app.testing.harness import SyncHarness
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio

LETTA_TOKEN = "letta-bearer-token-7f3a9c"
MCP_PASSWORD = "mcp-secret-password-41d2"
LIMITED = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 20}


class Evidence:
    """Everything a secret could leak into, gathered over several syncs."""

    def __init__(self, h: SyncHarness) -> None:
        self.h = h
        self.texts: list[str] = []
        self.outcomes: list[str] = []
        self.reports: list[SyncReport] = []
        self.secrets: set[str] = {"bot-secret-password", "admin-secret-password"}
        self.secrets |= {LETTA_TOKEN, MCP_PASSWORD}

    def collect_secrets(self) -> None:
        for mapping in mappings_on_disk(self.h.data_dir).values():
            self.secrets.add(mapping["matrix_password"])
        for token in tokens_on_disk(self.h.data_dir).values():
            self.secrets.add(token["access_token"])

    def report(self, report: SyncReport) -> None:
        self.texts += [report.summary(), json.dumps(report.to_json()), repr(report)]
        self.outcomes.append("report")
        self.reports.append(report)
        self.collect_secrets()

    def error(self, error: BaseException) -> None:
        self.texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        self.outcomes.append(type(error).__name__)
        self.collect_secrets()

    async def sync(self) -> None:
        try:
            async with self.h.service(
                letta_token=LETTA_TOKEN, mcp_username="mcp", mcp_password=MCP_PASSWORD
            ) as service:
                report = await service.sync()
                self.texts += [repr(service), repr(service.store), repr(service.config)]
                self.texts += [repr(m) for m in service.mappings()]
                self.texts += [repr(t) for t in service.store.tokens.values()]
        except SyncError as error:
            self.error(error)
        else:
            self.report(report)

    def leaks(self, caplog: pytest.LogCaptureFixture) -> dict[str, list[int]]:
        texts = [*self.texts, caplog.text, *(r.getMessage() for r in caplog.records)]
        found: dict[str, list[int]] = {}
        for secret in self.secrets:
            hits = [n for n, text in enumerate(texts) if secret in text]
            if hits:
                found[secret[:6] + "…"] = hits
        return found


async def test_a_full_sync_with_faults_leaks_no_password_or_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h, door = harness_with_door(tmp_path / "data")
    h.letta.token = LETTA_TOKEN
    evidence = Evidence(h)
    ids = [h.letta.add_agent(f"Agent {n}") for n in range(4)]
    h.letta.add_message(ids[0], "user_message", "hello")

    # 1. First sync through rate limits, gateway errors and a lost reply.
    h.homeserver.fail_next("createRoom", 429, LIMITED)
    h.homeserver.fail_next("joined_rooms", 503, {"errcode": "M_UNKNOWN", "error": "later"})
    h.letta.fail_next("list_agents", 503, {"detail": "warming up"})
    door.matrix("PUT", r"/send/", read_timeout())
    await evidence.sync()

    # 2. Expired tokens, a rename, one failing agent, an HTML error.
    tokens = tokens_on_disk(h.data_dir)
    h.homeserver.expire_token(tokens[h.admin_id]["access_token"])
    agent_user = mappings_on_disk(h.data_dir)[ids[1]]["matrix_user_id"]
    h.homeserver.expire_token(tokens[agent_user]["access_token"])
    h.letta.rename(ids[1], "Renamed")
    h.letta.add_agent("Doomed")
    door.matrix("POST", r"/createRoom$", respond(500, raw=HTML_PAGE))
    await evidence.sync()

    # 3. Setup failures: a login refused by a proxy, then the homeserver gone.
    h.homeserver.expire_token(tokens_on_disk(h.data_dir)[h.admin_id]["access_token"])
    door.matrix("POST", r"/login$", respond(500, {"errcode": "M_UNKNOWN", "error": "db down"}))
    await evidence.sync()
    door.matrix("*", "", refuse(), forever=True)
    await evidence.sync()

    assert evidence.outcomes == ["report", "report", "MatrixServerError", "ConnectionFailed"]
    first, second = evidence.reports
    assert first.ok, first.failures
    assert [f.agent_name for f in second.failures] == ["Doomed"] and second.renamed == [ids[1]]
    assert any("logging in again" in r.getMessage() for r in caplog.records)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert len(evidence.secrets) >= 4 + 2 * len(ids)
    assert evidence.leaks(caplog) == {}


def test_secret_carrying_values_keep_secrets_out_of_reprs() -> None:
    secret = "s3cret-value-9d1e"
    request = Request(
        "POST",
        "http://localhost:8008/_matrix/client/v3/login",
        {"Authorization": f"Bearer {secret}"},
        {"password": secret},
    )
    values = [
        request,
        Credentials("@agent:localhost", secret),
        LoginResult("@agent:localhost", secret, "DEVICE"),
        StoredToken(secret, "DEVICE"),
    ]

    assert all(secret not in repr(value) for value in values)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_state_files_are_0600_and_the_data_dir_0700(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # prove the modes are set explicitly, not inherited
    try:
        (tmp_path / "deep").mkdir()
        h = SyncHarness(tmp_path / "deep" / "data", letta=FakeLetta())
        h.letta.add_agent("Private")
        assert (await h.sync()).ok
    finally:
        os.umask(old_umask)

    assert mode(h.data_dir) == 0o700
    for name in (MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE, "sync.lock"):
        assert mode(h.data_dir / name) == 0o600, name
    assert not [p.name for p in h.data_dir.iterdir() if mode(p) & 0o077]


def test_journal_is_created_0600(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        store = MappingStore.open(tmp_path / "data", durable=False)
        store.save_token("@bot:localhost", "token-value", "DEVICE")
        journal_mode = mode(tmp_path / "data" / JOURNAL_FILE)
        store.close()
    finally:
        os.umask(old_umask)

    assert journal_mode == 0o600
    assert mode(tmp_path / "data" / TOKENS_FILE) == 0o600
