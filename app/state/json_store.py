"""`JsonFileStore`: the `Store` over the JSON files of MATRIX_DATA_DIR (the default backend).

It holds the data directory's lock while open, so two syncs never share one directory, and
delegates to `MappingStore` (journal, compaction, atomic private files). The writes are plain
file writes on the calling thread, as they always were: each is one short append.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.errors import StateFileError
from app.state.files import OS_FILES, FileOps, read_json, write_json_atomic
from app.state.lock import DataDirLock
from app.state.models import AgentMapping, SpaceConfig
from app.state.protocol import StoredToken, moved_on
from app.state.store import MappingStore

# The homeserver view: a cache, kept apart from the files the bridge reads.
VIEW_FILE = "matrix_sync_view.json"
# Where the view has got to since it was last written (see `Store.save_view_token`).
VIEW_POSITION_FILE = "matrix_sync_view_position.json"


class JsonFileStore:
    def __init__(self, files: MappingStore, lock: DataDirLock | None = None) -> None:
        self.files = files
        self._lock = lock

    @classmethod
    def open(
        cls, data_dir: Path, *, durable: bool = True, files: FileOps = OS_FILES
    ) -> JsonFileStore:
        """Lock the directory, then load it; the lock is released if loading fails."""
        lock = DataDirLock(data_dir)
        lock.acquire()
        try:
            return cls(MappingStore.open(data_dir, durable=durable, files=files), lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def read(cls, data_dir: Path) -> JsonFileStore:
        """A snapshot for display: no lock, nothing written."""
        return cls(MappingStore.read(data_dir))

    def __repr__(self) -> str:
        return f"JsonFileStore({self.files!r})"

    @property
    def data_dir(self) -> Path:
        return self.files.data_dir

    @property
    def location(self) -> str:
        return f"MATRIX_DATA_DIR={self.files.data_dir.resolve()}"

    @property
    def mappings(self) -> Mapping[str, AgentMapping]:
        return self.files.mappings

    @property
    def space(self) -> SpaceConfig:
        return self.files.space

    @property
    def tokens(self) -> Mapping[str, StoredToken]:
        return self.files.tokens

    @property
    def has_pending_changes(self) -> bool:
        return self.files.has_pending_changes

    def get(self, agent_id: str) -> AgentMapping | None:
        return self.files.get(agent_id)

    def all(self) -> list[AgentMapping]:
        return self.files.all()

    def token(self, user_id: str) -> StoredToken | None:
        return self.files.token(user_id)

    async def save_mapping(self, mapping: AgentMapping, *, fsync: bool = False) -> None:
        self.files.save_mapping(mapping, fsync=fsync)

    async def save_token(self, user_id: str, access_token: str, device_id: str | None) -> None:
        self.files.save_token(user_id, access_token, device_id)

    async def save_space(self, space: SpaceConfig) -> None:
        self.files.save_space(space)

    async def compact(self) -> None:
        self.files.compact()

    async def load_view(self) -> Any:
        # A damaged cache is read afresh from the homeserver; a damaged position only means
        # reading from the view's own token again.
        try:
            view = read_json(self.data_dir / VIEW_FILE)
        except StateFileError:
            return None
        try:
            position = read_json(self.data_dir / VIEW_POSITION_FILE)
        except StateFileError:
            return view
        return moved_on(view, position)

    async def save_view(self, data: Any) -> None:
        # Not fsynced: a view lost in a power cut costs one full read.
        self._write(VIEW_FILE, data)

    async def save_view_token(self, base: str, next_batch: str) -> None:
        self._write(VIEW_POSITION_FILE, {"base": base, "next_batch": next_batch})

    def _write(self, name: str, data: Any) -> None:
        path = self.data_dir / name
        write_json_atomic(path, data, durable=False, files=self.files.files, indent=None)

    async def aclose(self) -> None:
        try:
            self.files.close()
        finally:
            if self._lock is not None:
                self._lock.release()
