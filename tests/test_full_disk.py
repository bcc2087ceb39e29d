"""A disk that fills up at any write the store makes loses nothing, and never passes for success.

The file layer is injected (`FaultyFiles`): the disk fills at the k-th write, fsync or rename
of a sync, for every k that sync makes (journal appends, temp files, renames, the token
file). Whatever k, the files on disk stay whole, the sync raises `StateWriteError` unless it
really saved everything, and a sync after space is freed converges with every password kept.
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import httpx
import pytest
import respx
from faulty_files import FALLIBLE, FaultyFiles

from app.cli import main
from app.errors import StateWriteError
from app.state.files import FileOps, write_all
from app.state.models import AgentMapping
from app.state.store import JOURNAL_FILE, MAPPINGS_FILE, TOKENS_FILE, MappingStore
from app.sync.report import SyncReport
from app.sync.service import SyncService
from app.testing.harness import SyncHarness

from helpers import cli_env

pytestmark = pytest.mark.anyio


def on_disk(data_dir: Path, name: str) -> dict[str, dict[str, object]]:
    data = json.loads((data_dir / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def journal_lines_whole(data_dir: Path) -> None:
    journal = data_dir / JOURNAL_FILE
    if journal.exists():
        for line in journal.read_bytes().splitlines():
            assert isinstance(json.loads(line), dict), line


def service(h: SyncHarness, files: FaultyFiles) -> SyncService:
    return SyncService(h.config(), h.transport(), pacing=h.clock.pacing(), files=files)


async def sync_with(h: SyncHarness, files: FaultyFiles) -> SyncReport | StateWriteError:
    try:
        async with service(h, files) as running:
            return await running.sync()
    except StateWriteError as exc:
        return exc


async def seeded(data_dir: Path) -> tuple[SyncHarness, list[str], dict[str, dict[str, object]]]:
    """Two agents synced on a good disk, then renamed, and two new agents added."""
    h = SyncHarness(data_dir)
    old = [h.letta.add_agent("Ada"), h.letta.add_agent("Brook")]
    assert isinstance(report := await sync_with(h, FaultyFiles()), SyncReport) and report.ok
    for agent_id in old:
        h.letta.rename(agent_id, f"{h.letta.agent(agent_id).name} the Second")
    new = [h.letta.add_agent("Carol"), h.letta.add_agent("Dana")]
    return h, [*old, *new], on_disk(data_dir, MAPPINGS_FILE)


async def test_a_disk_full_at_any_write_of_a_sync_loses_nothing(tmp_path: Path) -> None:
    clean = FaultyFiles()
    h, _, _ = await seeded(tmp_path / "count")
    assert isinstance(await sync_with(h, clean), SyncReport)
    fallible = [call for call in clean.calls if call[0] in FALLIBLE]
    assert len(fallible) > 10  # journal appends, two folded files, their fsyncs and renames

    for fail_at, (operation, _name) in enumerate(fallible):
        # A write fails either cut short (then ENOSPC) or at once; other calls just fail.
        for short_first in (True, False) if operation == "write" else (False,):
            data_dir = tmp_path / f"k{fail_at}-{short_first}"
            h, agents, before = await seeded(data_dir)
            files = FaultyFiles(fail_at=fail_at, short_first=short_first)

            outcome = await sync_with(h, files)

            where = f"disk full at call {fail_at} ({files.calls[-1]})"
            assert isinstance(outcome, StateWriteError), f"{where}: the sync claimed success"
            assert "No space left on device" in str(outcome), where
            after = on_disk(data_dir, MAPPINGS_FILE)  # whole JSON, never a torn file
            on_disk(data_dir, TOKENS_FILE)
            journal_lines_whole(data_dir)
            for agent_id, old in before.items():
                assert after[agent_id]["matrix_password"] == old["matrix_password"], where

            files.free()
            report = await sync_with(h, files)
            assert isinstance(report, SyncReport) and report.ok, where
            final = on_disk(data_dir, MAPPINGS_FILE)
            for agent_id in agents:
                user = str(final[agent_id]["matrix_user_id"])
                assert h.homeserver.password(user) == final[agent_id]["matrix_password"], where
                assert final[agent_id]["agent_name"] == h.letta.agent(agent_id).name, where
                assert h.homeserver.displayname(user) == h.letta.agent(agent_id).name, where
                assert len(h.homeserver.rooms_of(user)) == 1, where


async def test_the_journal_goes_only_once_the_folded_files_would_survive_a_power_cut(
    tmp_path: Path,
) -> None:
    h, _, _ = await seeded(tmp_path / "data")
    files = FaultyFiles()

    assert isinstance(await sync_with(h, files), SyncReport)

    journal = h.data_dir / JOURNAL_FILE
    assert journal in files.survivors_at_unlink, "the sync never folded its journal"
    survivors = files.survivors_at_unlink[journal]
    for name in (MAPPINGS_FILE, TOKENS_FILE):
        assert survivors.get(h.data_dir / name) == (h.data_dir / name).read_bytes(), name


async def test_without_durability_a_power_cut_could_lose_the_folded_files(tmp_path: Path) -> None:
    """`durable=False` (tests and benchmarks only) really turns the fsyncs off."""
    store = MappingStore.open(tmp_path / "data", durable=False, files=(files := FaultyFiles()))
    store.save_mapping(AgentMapping("agent-1", "Ada", "@a:localhost", "pw"), fsync=True)
    store.close()
    assert ("fsync", JOURNAL_FILE) not in files.calls
    survivors = files.survivors_at_unlink[tmp_path / "data" / JOURNAL_FILE]
    assert tmp_path / "data" / MAPPINGS_FILE not in survivors


async def test_a_new_agents_password_is_on_disk_before_it_is_registered(tmp_path: Path) -> None:
    files = FaultyFiles()
    seen_at_register: list[bool] = []

    def password_fsynced(request: httpx.Request) -> None:
        body = json.loads(request.content)
        if str(body.get("username", "")).startswith("agent"):
            durable = files.fsynced.get(tmp_path / "data" / JOURNAL_FILE, b"")
            seen_at_register.append(body["password"].encode() in durable)
        # None: not answered here, the fake homeserver registers the user.

    router = respx.MockRouter(using=None, assert_all_called=False)
    router.post(path__regex=r"/register$").mock(side_effect=password_fsynced)
    h = SyncHarness(tmp_path / "data", router=router)
    h.letta.add_agent("Ada")

    assert isinstance(await sync_with(h, files), SyncReport)

    assert seen_at_register == [True]


def test_a_failed_append_leaves_no_fragment_for_the_next_record(tmp_path: Path) -> None:
    files = FaultyFiles()
    store = MappingStore.open(tmp_path, files=files)
    store.save_mapping(AgentMapping("agent-1", "Ada", "@a:localhost", "pw-1"))
    files.fail_at = files.fallible_calls  # the next write is cut short, then ENOSPC
    with pytest.raises(StateWriteError, match=r"agent_user_mappings\.journal"):
        store.save_mapping(AgentMapping("agent-2", "Brook", "@b:localhost", "pw-2"), fsync=True)
    files.free()
    store.save_mapping(AgentMapping("agent-3", "Carol", "@c:localhost", "pw-3"))
    journal_lines_whole(tmp_path)

    reopened = MappingStore.read(tmp_path)
    assert reopened.get("agent-1") is not None and reopened.get("agent-3") is not None


def test_a_full_disk_at_compaction_keeps_the_old_file_and_the_journal(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path)
    store.save_mapping(AgentMapping("agent-1", "Ada", "@a:localhost", "pw-1"))
    store.compact()
    files = FaultyFiles()
    store = MappingStore.open(tmp_path, files=files)
    store.save_mapping(AgentMapping("agent-2", "Brook", "@b:localhost", "pw-2"))
    files.fail_at = files.fallible_calls  # the folded file is cut short

    with pytest.raises(StateWriteError, match="No space left on device"):
        store.close()

    assert set(on_disk(tmp_path, MAPPINGS_FILE)) == {"agent-1"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert MappingStore.read(tmp_path).get("agent-2") is not None  # the journal kept it


def test_a_torn_line_that_cannot_be_cut_back_stops_appends_until_the_journal_is_folded(
    tmp_path: Path,
) -> None:
    files = FaultyFiles(truncate_fails=True)
    store = MappingStore.open(tmp_path, files=files)
    store.save_mapping(AgentMapping("agent-1", "Ada", "@a:localhost", "pw-1"))
    files.fail_at = files.fallible_calls  # the next append is cut short, and stays torn
    with pytest.raises(StateWriteError):
        store.save_mapping(AgentMapping("agent-2", "Brook", "@b:localhost", "pw-2"))
    files.free()

    with pytest.raises(StateWriteError, match="torn record"):
        store.save_mapping(AgentMapping("agent-3", "Carol", "@c:localhost", "pw-3"))
    store.close()  # folding writes whole files from memory and drops the torn journal

    reopened = MappingStore.read(tmp_path)
    assert {m.agent_id for m in reopened.all()} == {"agent-1", "agent-2", "agent-3"}
    assert not (tmp_path / JOURNAL_FILE).exists()


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (errno.ENOSPC, "free some space"),
        (errno.EACCES, "write access"),
        (errno.EROFS, "read-only"),
        (errno.EIO, "fix the cause"),
    ],
)
def test_the_exit_4_message_names_the_cause_the_system_gave(
    tmp_path: Path, error: int, hint: str
) -> None:
    h = SyncHarness(tmp_path / "data")
    h.letta.add_agent("Unsaved")
    files = FaultyFiles(fail_at=0, short_first=False, error=error)
    out, err = io.StringIO(), io.StringIO()

    code = main(["sync"], env=cli_env(h), transport=h.transport(), out=out, err=err, files=files)

    assert code == 4 and hint in err.getvalue(), err.getvalue()
    others = {"free some space", "write access", "read-only"} - {hint}
    assert not any(other in err.getvalue() for other in others)


def test_a_write_that_takes_no_byte_is_a_full_disk_by_its_system_message(tmp_path: Path) -> None:
    """Some file systems answer a full disk with a write of 0 bytes, not an error."""

    class TakesNothing(FileOps):
        def write(self, fd: int, data: memoryview) -> int:
            return 0

    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as caught:
            write_all(TakesNothing(), fd, b"data")
    finally:
        os.close(fd)

    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == "[Errno 28] No space left on device"
