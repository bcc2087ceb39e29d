"""One sync per data directory: an advisory lock file held for the whole sync."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from app.errors import StateFileError, SyncLocked
from app.state.files import FILE_MODE, ensure_private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; the lock is then advisory only
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "sync.lock"


class DataDirLock:
    """Held while a sync runs; a second process on the same directory gets `SyncLocked`.

    The kernel drops the lock when the holder dies, so a killed sync never leaves it stale.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        ensure_private_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise StateFileError(f"cannot open {self.path}: {exc.strerror}") from exc
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise SyncLocked(
                    f"another sync (pid {holder}) holds {self.path}; try again when it ends"
                ) from None
        self._fd = fd
        # The pid only helps a second process say who holds the lock: a full disk must not
        # stop a sync over it.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
