"""Durable, private file writes: temp file + fsync + rename, mode 0600, directory 0700.

Every write the store makes goes through one `FileOps` object, the seam where tests inject a
full disk (short writes, ENOSPC) or a failing rename; production uses `OS_FILES`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any

from app.errors import StateFileError, StateWriteError

FILE_MODE = 0o600
DIR_MODE = 0o700
# Filesystems that cannot fsync a directory say so with these; nothing more can be done there.
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EBADF})


class FileOps:
    """The system calls behind the state files; subclass it to inject faults in tests."""

    def open(self, path: Path, flags: int, mode: int = FILE_MODE) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def unlink(self, path: Path) -> None:
        path.unlink(missing_ok=True)


OS_FILES = FileOps()


def write_all(files: FileOps, fd: int, data: bytes) -> None:
    """Write every byte of `data`: a full disk first writes short, then refuses."""
    view = memoryview(data)
    while view:
        written = files.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def ensure_private_dir(directory: Path) -> None:
    """Create the data directory itself, never its parents: a typo in the path should stop
    the sync, not start a new empty state somewhere unexpected."""
    if directory.is_dir():
        return
    parent = directory.absolute().parent
    if not parent.is_dir():
        raise StateFileError(
            f"the data directory {directory} cannot be created: {parent} does not exist "
            "(check MATRIX_DATA_DIR; missing parent directories are not created)"
        )
    try:
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise StateFileError(f"cannot create data directory {directory}: {exc.strerror}") from exc


def read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text) if text.strip() else None
    except ValueError as exc:
        raise StateFileError(f"{path} is not valid JSON ({exc}); fix or move it aside") from exc


def write_json_atomic(
    path: Path,
    data: Any,
    *,
    durable: bool = True,
    files: FileOps = OS_FILES,
    indent: int | None = 2,
) -> None:
    """Replace `path` so that readers see either the old or the new file, never a torn one.

    With `durable`, the new file is on disk (its data and the rename) before this returns.
    """
    separators = None if indent is not None else (",", ":")
    text = json.dumps(data, indent=indent, separators=separators, ensure_ascii=False)
    payload = text.encode("utf-8")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_file(files, temp, payload, durable=durable)
        files.replace(temp, path)
        if durable:
            fsync_dir(path.parent, files)
    except OSError as exc:
        with contextlib.suppress(OSError):
            files.unlink(temp)
        raise StateWriteError(f"cannot write {path}: {os_reason(exc)}") from exc


def _write_file(files: FileOps, path: Path, payload: bytes, *, durable: bool) -> None:
    fd = files.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        write_all(files, fd, payload)
        if durable:
            files.fsync(fd)
        # The rename below must never put a short file in place of a good one.
        if files.size(fd) != len(payload):
            raise OSError(errno.EIO, f"wrote {files.size(fd)} of {len(payload)} bytes")
    finally:
        files.close(fd)
    os.chmod(path, FILE_MODE)


def os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def fsync_dir(directory: Path, files: FileOps = OS_FILES) -> None:
    """Make a rename in `directory` durable: it is only on disk once the directory entry is."""
    try:
        fd = files.open(directory, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in _DIR_FSYNC_UNSUPPORTED:
            return
        raise
    try:
        files.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        files.close(fd)
