"""The file layer under the JSON store: what each failure says, that a file written short
never replaces a whole one, and that a directory fsync a file system cannot do is skipped."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from app.errors import StateFileError, StateWriteError
from app.state import AgentMapping, MappingStore
from app.state.files import FileOps, ensure_private_dir, fsync_dir, read_json, write_json_atomic
from app.state.store import JOURNAL_FILE


def test_a_data_directory_is_made_but_never_its_parents(tmp_path: Path) -> None:
    ensure_private_dir(tmp_path / "data")
    with pytest.raises(StateFileError) as caught:
        ensure_private_dir(tmp_path / "typo" / "data")

    assert (tmp_path / "data").is_dir() and (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert str(caught.value) == (
        f"the data directory {tmp_path / 'typo' / 'data'} cannot be created: "
        f"{tmp_path / 'typo'} does not exist (check MATRIX_DATA_DIR; missing parent "
        "directories are not created)"
    )


def test_reading_says_what_is_wrong_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{oops")
    (tmp_path / "empty.json").write_text("  \n")

    with pytest.raises(StateFileError) as unreadable:
        read_json(tmp_path)
    with pytest.raises(StateFileError) as broken:
        read_json(tmp_path / "broken.json")

    assert str(unreadable.value) == f"cannot read {tmp_path}: Is a directory"
    assert str(broken.value).startswith(f"{tmp_path / 'broken.json'} is not valid JSON (")
    assert str(broken.value).endswith("); fix or move it aside")
    assert read_json(tmp_path / "empty.json") is None and read_json(tmp_path / "none") is None


class SizeLies(FileOps):
    """A file system that reports the written file one byte short (a lost write)."""

    def size(self, fd: int) -> int:
        return super().size(fd) - 1


def test_a_file_written_short_never_replaces_the_whole_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"kept": True})

    with pytest.raises(StateWriteError) as caught:
        write_json_atomic(path, {"kept": False}, files=SizeLies())

    assert json.loads(path.read_text()) == {"kept": True}
    assert str(caught.value).startswith(f"cannot write {path}: wrote ")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


class DirectoriesCannotOpen(FileOps):
    def __init__(self, code: int) -> None:
        self.code = code

    def open(self, path: Path, flags: int, mode: int = 0o600) -> int:
        if path.is_dir():
            raise OSError(self.code, os.strerror(self.code))
        return super().open(path, flags, mode)


def test_a_directory_fsync_the_file_system_cannot_do_is_skipped_any_other_failure_raised(
    tmp_path: Path,
) -> None:
    fsync_dir(tmp_path, DirectoriesCannotOpen(errno.EINVAL))

    with pytest.raises(OSError) as caught:
        fsync_dir(tmp_path, DirectoriesCannotOpen(errno.EACCES))

    assert caught.value.errno == errno.EACCES


class Fails(FileOps):
    """One system call fails with EIO; the others work."""

    def __init__(self, call: str) -> None:
        self.call = call

    def _check(self, call: str) -> None:
        if call == self.call:
            raise OSError(errno.EIO, "Input/output error")

    def open(self, path: Path, flags: int, mode: int = 0o600) -> int:
        if path.name == JOURNAL_FILE:
            self._check("open")
        return super().open(path, flags, mode)

    def size(self, fd: int) -> int:
        self._check("size")
        return super().size(fd)

    def close(self, fd: int) -> None:
        self._check("close")
        super().close(fd)

    def unlink(self, path: Path) -> None:
        self._check("unlink")
        super().unlink(path)


def a_mapping(agent_id: str) -> AgentMapping:
    return AgentMapping(agent_id, "Name", f"@{agent_id}:hs", "pw", True, f"!{agent_id}:hs")


@pytest.mark.parametrize("call", ["open", "size"])
def test_a_journal_that_cannot_be_appended_to_says_so_by_name(tmp_path: Path, call: str) -> None:
    store = MappingStore.open(tmp_path, files=Fails(call))

    with pytest.raises(StateWriteError) as caught:
        store.save_mapping(a_mapping("agent-1"))

    assert str(caught.value) == (f"cannot append to {tmp_path / JOURNAL_FILE}: Input/output error")


def test_a_journal_that_cannot_be_removed_after_folding_says_so_and_stays(tmp_path: Path) -> None:
    store = MappingStore.open(tmp_path, files=Fails("unlink"))
    store.save_mapping(a_mapping("agent-1"))

    with pytest.raises(StateWriteError) as caught:
        store.compact()

    assert str(caught.value) == f"cannot remove {tmp_path / JOURNAL_FILE}: Input/output error"
    assert (tmp_path / JOURNAL_FILE).exists()  # replaying it again is harmless
    assert MappingStore.read(tmp_path).get("agent-1") == a_mapping("agent-1")


class OneByteAtATime(FileOps):
    """A file system that takes one byte per write (allowed: a write may be short)."""

    def write(self, fd: int, data: memoryview) -> int:
        return super().write(fd, data[:1])


def test_a_file_written_one_byte_at_a_time_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.json"

    write_json_atomic(path, {"agents": ["a", "b"]}, files=OneByteAtATime())

    assert json.loads(path.read_text()) == {"agents": ["a", "b"]}
