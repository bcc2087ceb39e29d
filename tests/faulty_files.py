"""`FaultyFiles`: the store's file layer with a disk that fills up, and a power-cut model.

It does the real work on a real directory (so the store reads back what it wrote), counts
every call that can fail on a full disk, and from the `fail_at`-th such call on behaves as a
full disk does: the first write is cut short, and every write, fsync and rename after it fails
with ENOSPC, until `free()`.

It also tracks what would survive a power cut: a file's data survives once fsynced, and a
rename once its directory is fsynced. `survivors_at_unlink` is that picture at the moment a
file is removed (the journal, when the store compacts).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.state.files import FileOps

FALLIBLE = ("write", "fsync", "replace")


@dataclass
class FaultyFiles(FileOps):
    fail_at: int | None = None
    short_first: bool = True
    # Cutting a torn journal line back fails too (a dying disk, not just a full one).
    truncate_fails: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    full: bool = False
    # What the failing calls raise: a full disk by default, or a refusal (EACCES, EROFS).
    error: int = errno.ENOSPC
    # Power-cut model: data as last fsynced, renames awaiting their directory's fsync, and
    # what a power cut would leave, per path.
    fsynced: dict[Path, bytes] = field(default_factory=dict)
    pending_renames: dict[Path, bytes] = field(default_factory=dict)
    survivors: dict[Path, bytes] = field(default_factory=dict)
    survivors_at_unlink: dict[Path, dict[Path, bytes]] = field(default_factory=dict)
    _paths: dict[int, Path] = field(default_factory=dict)
    _cut_short: bool = False

    def free(self) -> None:
        self.full, self.fail_at = False, None

    @property
    def fallible_calls(self) -> int:
        return sum(1 for operation, _ in self.calls if operation in FALLIBLE)

    def _fails(self, operation: str, path: Path) -> bool:
        self.calls.append((operation, path.name))
        if self.fail_at is not None and self.fallible_calls > self.fail_at:
            self.full = True
        return self.full

    def open(self, path: Path, flags: int, mode: int = 0o600) -> int:
        fd = super().open(path, flags, mode)
        self._paths[fd] = Path(path)
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)

    def truncate(self, fd: int, length: int) -> None:
        self.calls.append(("truncate", self._paths[fd].name))
        if self.truncate_fails:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        super().truncate(fd, length)

    def write(self, fd: int, data: memoryview) -> int:
        if not self._fails("write", self._paths[fd]):
            return super().write(fd, data)
        if self.short_first and not self._cut_short and len(data) > 1:
            self._cut_short = True
            return super().write(fd, data[: len(data) // 2])
        raise OSError(self.error, os.strerror(self.error))

    def fsync(self, fd: int) -> None:
        path = self._paths[fd]
        if self._fails("fsync", path):
            raise OSError(self.error, os.strerror(self.error))
        # Real fsyncs would only slow the suite down: the model records what they promise.
        if path.is_dir():
            for target in [t for t in self.pending_renames if t.parent == path]:
                self.survivors[target] = self.pending_renames.pop(target)
        else:
            self.fsynced[path] = path.read_bytes()

    def replace(self, source: Path, target: Path) -> None:
        if self._fails("replace", Path(target)):
            raise OSError(self.error, os.strerror(self.error))
        super().replace(source, target)
        # Data never fsynced may come back empty after a power cut.
        self.pending_renames[Path(target)] = self.fsynced.pop(Path(source), b"")

    def unlink(self, path: Path) -> None:
        self.calls.append(("unlink", path.name))
        self.survivors_at_unlink[Path(path)] = dict(self.survivors)
        super().unlink(path)
