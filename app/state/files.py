"""Durable, private file writes: temp file + fsync + rename, mode 0600, directory 0700."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from app.errors import StateFileError

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
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


def write_json_atomic(path: Path, data: Any, *, durable: bool = True) -> None:
    """Replace `path` so that readers see either the old or the new file, never a torn one."""
    payload = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, payload)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, FILE_MODE)
        os.replace(temp, path)
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise StateFileError(f"cannot write {path}: {exc.strerror}") from exc


def fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
