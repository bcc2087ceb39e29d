"""What the state files promise across a sync: what is on disk when, and what is left alone.

The file layer is injected (`FaultyFiles`, the power-cut model of tests/faulty_files.py), never
patched: it does the real work and records what an fsync would have made durable.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from faulty_files import FaultyFiles

from app.cli import main
from app.http.transport import Request, Response, Transport
from app.state.store import JOURNAL_FILE, MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE
from app.sync.service import SyncService
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio

STATE_FILES = (MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE)


class RegisterWatch:
    """Forwards every request; at each `POST /register`, notes the password and whether a
    power cut at that moment would keep it (it is in fsynced data)."""

    def __init__(self, inner: Transport, files: FaultyFiles) -> None:
        self.inner = inner
        self.files = files
        self.registered: dict[str, bool] = {}

    async def send(self, request: Request) -> Response:
        if request.method == "POST" and request.url.split("?")[0].endswith("/register"):
            body = request.json or {}
            password = body.get("password")
            if isinstance(password, str) and "username" in body:
                durable = [*self.files.fsynced.values(), *self.files.survivors.values()]
                kept = any(password.encode("utf-8") in data for data in durable)
                self.registered[str(body["username"])] = kept
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_new_agents_password_is_fsynced_before_it_is_registered(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Durable")
    files = FaultyFiles()
    transport = RegisterWatch(h.transport(), files)

    async with SyncService(
        h.config(), transport, pacing=h.clock.pacing(), durable=True, files=files
    ) as service:
        report = await service.sync()

    assert report.ok, report.failures
    mapping = json.loads((h.data_dir / MAPPINGS_FILE).read_text())[agent_id]
    localpart = mapping["matrix_user_id"][1:].split(":")[0]
    assert transport.registered[localpart] is True
    assert h.homeserver.password(mapping["matrix_user_id"]) == mapping["matrix_password"]


async def test_durable_false_never_fsyncs(sync_harness: SyncHarness) -> None:
    h = sync_harness
    h.letta.add_agent("Fast")
    files = FaultyFiles()

    async with SyncService(
        h.config(), h.transport(), pacing=h.clock.pacing(), durable=False, files=files
    ) as service:
        report = await service.sync()

    assert report.ok, report.failures
    assert (h.data_dir / MAPPINGS_FILE).exists()
    assert [call for call in files.calls if call[0] == "fsync"] == []


def file_identities(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of each state file: a rewrite changes one or the other."""
    found = {}
    for name in STATE_FILES:
        status = os.stat(data_dir / name)
        found[name] = (status.st_ino, status.st_mtime_ns)
    return found


async def test_a_sync_that_changes_nothing_rewrites_no_state_file(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    h.letta.add_agent("Steady")
    assert (await h.sync()).ok
    assert (await h.sync()).ok  # reads what the first one changed on the homeserver
    before = file_identities(h.data_dir)
    files = FaultyFiles()

    async with SyncService(
        h.config(), h.transport(), pacing=h.clock.pacing(), files=files
    ) as service:
        report = await service.sync()

    assert report.ok and report.users_created == report.rooms_created == []
    assert file_identities(h.data_dir) == before
    assert [call for call in files.calls if call[0] == "replace"] == []
    assert not (h.data_dir / JOURNAL_FILE).exists()


@pytest.mark.parametrize("line", ["[1, 2]", '"mapping"', "42", "null", "true"])
def test_a_journal_line_that_is_json_but_not_an_object_is_skipped(
    tmp_path: Path, line: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    record = {
        "kind": "mapping",
        "agent_id": "agent-kept",
        "data": {
            "agent_id": "agent-kept",
            "agent_name": "Kept",
            "matrix_user_id": "@agent_kept:localhost",
            "matrix_password": "kept-password",
            "created": True,
        },
    }
    (data_dir / JOURNAL_FILE).write_text(f"{line}\n{json.dumps(record)}\n", encoding="utf-8")
    out = io.StringIO()

    code = main(["status", "--json"], env={"MATRIX_DATA_DIR": str(data_dir)}, out=out)

    assert code == 0
    shown = json.loads(out.getvalue())
    assert [agent["agent_id"] for agent in shown["agents"]] == ["agent-kept"]
