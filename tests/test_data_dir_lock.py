"""One sync per data directory, as the command line shows it (in-process: flock conflicts
between two open files of one process just as between two processes)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from app.cli import main
from app.errors import SyncLocked
from app.state.lock import LOCK_FILE, DataDirLock
from app.testing.harness import SyncHarness

from helpers import cli_env


@pytest.fixture
def harness(tmp_path: Path) -> SyncHarness:
    return SyncHarness(tmp_path / "data")


def sync(h: SyncHarness) -> tuple[int, str]:
    err = io.StringIO()
    code = main(
        ["sync"],
        env=cli_env(h),
        transport=h.transport(),
        out=io.StringIO(),
        err=err,
        pacing=h.clock.pacing(),
    )
    return code, err.getvalue()


def test_a_sync_on_a_locked_data_dir_exits_3_naming_the_holder(harness: SyncHarness) -> None:
    harness.letta.add_agent("Waiting")
    with DataDirLock(harness.data_dir):
        code, err = sync(harness)

    assert code == 3
    lock_path = harness.data_dir / LOCK_FILE
    assert f"error: another sync (pid {os.getpid()}) holds {lock_path}; try again" in err
    assert harness.homeserver.room_ids() == []  # it stopped before touching anything


def test_the_lock_is_free_again_after_a_sync_and_after_a_refused_one(
    harness: SyncHarness,
) -> None:
    with DataDirLock(harness.data_dir):
        assert sync(harness)[0] == 3

    assert sync(harness)[0] == 0
    assert sync(harness)[0] == 0
    with DataDirLock(harness.data_dir) as lock:  # the syncs let go of it
        assert (harness.data_dir / LOCK_FILE).read_text() == str(os.getpid())
        assert lock.path == harness.data_dir / LOCK_FILE


def test_the_lock_file_is_private(harness: SyncHarness) -> None:
    assert sync(harness)[0] == 0

    mode = stat.S_IMODE(os.stat(harness.data_dir / LOCK_FILE).st_mode)
    assert mode == 0o600


def test_a_holder_that_wrote_no_pid_is_named_unknown(tmp_path: Path) -> None:
    holder = DataDirLock(tmp_path)
    holder.acquire()
    os.truncate(tmp_path / LOCK_FILE, 0)  # a holder that died before writing its pid
    try:
        with pytest.raises(SyncLocked, match=r"another sync \(pid unknown\) holds"):
            DataDirLock(tmp_path).acquire()
    finally:
        holder.release()
    holder.release()  # twice is harmless


def test_a_lock_path_that_cannot_be_opened_exits_2_naming_it(harness: SyncHarness) -> None:
    harness.data_dir.mkdir()
    (harness.data_dir / LOCK_FILE).mkdir()  # a directory where the lock file goes

    code, err = sync(harness)

    assert code == 2
    assert f"cannot open {harness.data_dir / LOCK_FILE}" in err
