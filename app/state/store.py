"""`MappingStore`: mappings, the space config and access tokens, durable after every change.

Each change is appended to a journal (one JSON line): O(1) per change however many agents
there are. The journal is folded into the JSON files the bridge reads whenever it grows as
long as the mapping table (amortised O(1)) and when the store is closed, and it is replayed on
open, so a crash loses no acknowledged change and never leaves a torn file.

Durability: every append reaches the kernel before `save_*` returns, so a killed process
(SIGKILL included) loses nothing. Surviving power loss needs an fsync: records that cannot be
recovered from the homeserver (a password about to be registered) ask for one with
`fsync=True`; the rest are fsynced in groups of `FSYNC_EVERY` and at compaction. Tokens and
room ids lost to a power cut are recovered by logging in and by the room tag.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from app.errors import StateFileError, StateWriteError
from app.state.files import (
    FILE_MODE,
    OS_FILES,
    FileOps,
    ensure_private_dir,
    os_reason,
    read_json,
    write_all,
    write_json_atomic,
)
from app.state.models import AgentMapping, SpaceConfig
from app.state.protocol import MemoryReads, StoredToken

log = logging.getLogger(__name__)

MAPPINGS_FILE = "agent_user_mappings.json"
SPACE_FILE = "letta_space_config.json"
TOKENS_FILE = "access_tokens.json"
JOURNAL_FILE = "agent_user_mappings.journal"
MIN_COMPACT_ENTRIES = 256
FSYNC_EVERY = 64


class MappingStore(MemoryReads):
    def __init__(self, data_dir: Path, *, durable: bool = True, files: FileOps = OS_FILES) -> None:
        self.data_dir = Path(data_dir)
        self.durable = durable
        self.files = files
        self.mappings: dict[str, AgentMapping] = {}
        self.space = SpaceConfig()
        self.tokens: dict[str, StoredToken] = {}
        self._journal_entries = 0
        self._unsynced = 0
        self._journal_fd: int | None = None
        self._journal_poisoned = False

    @classmethod
    def open(
        cls, data_dir: Path, *, durable: bool = True, files: FileOps = OS_FILES
    ) -> MappingStore:
        store = cls(data_dir, durable=durable, files=files)
        store.load()
        return store

    @classmethod
    def read(cls, data_dir: Path) -> MappingStore:
        """A snapshot for display: journal applied in memory, nothing written or created."""
        store = cls(data_dir)
        store.load(write=False)
        return store

    def __repr__(self) -> str:
        return f"MappingStore({str(self.data_dir)!r}, {len(self.mappings)} mappings)"

    def path(self, name: str) -> Path:
        return self.data_dir / name

    def load(self, *, write: bool = True) -> None:
        """Read both JSON files and the token file, then replay and fold in the journal."""
        if write:
            ensure_private_dir(self.data_dir)
        self.mappings = _load_mappings(self.path(MAPPINGS_FILE))
        self.space = SpaceConfig.from_json(_as_object(read_json(self.path(SPACE_FILE)), SPACE_FILE))
        self.tokens = _load_tokens(self.path(TOKENS_FILE))
        # Any journal left over is folded in, even one holding only a torn line: appending
        # after a fragment would glue the next record onto it.
        if self._replay_journal() is not None and write:
            self.compact()

    # Writes ------------------------------------------------------------------------------

    def save_mapping(self, mapping: AgentMapping, *, fsync: bool = False) -> None:
        """Record `mapping` before returning; `fsync=True` also survives a power cut."""
        self.mappings[mapping.agent_id] = mapping
        record = {"kind": "mapping", "agent_id": mapping.agent_id, "data": mapping.to_json()}
        self._append(record, fsync=fsync)

    def save_token(self, user_id: str, access_token: str, device_id: str | None) -> None:
        self.tokens[user_id] = StoredToken(access_token, device_id)
        self._append(
            {
                "kind": "token",
                "user_id": user_id,
                "access_token": access_token,
                "device_id": device_id,
            }
        )

    def save_space(self, space: SpaceConfig) -> None:
        self.space = space
        self._write(SPACE_FILE, space.to_json())

    def compact(self) -> None:
        """Write the JSON files from memory, then empty the journal.

        The journal goes only once both files are durable (data fsynced, renamed, directory
        fsynced): until then it is what a rerun replays.
        """
        self._write(MAPPINGS_FILE, {agent_id: m.to_json() for agent_id, m in self.mappings.items()})
        tokens = {
            user: {"access_token": t.access_token, "device_id": t.device_id}
            for user, t in self.tokens.items()
        }
        self._write(TOKENS_FILE, tokens)
        self._close_journal()
        try:
            self.files.unlink(self.path(JOURNAL_FILE))
        except OSError as exc:
            raise StateWriteError(
                f"cannot remove {self.path(JOURNAL_FILE)}: {os_reason(exc)}"
            ) from exc
        self._journal_entries = self._unsynced = 0
        self._journal_poisoned = False

    def _write(self, name: str, data: Any) -> None:
        write_json_atomic(self.path(name), data, durable=self.durable, files=self.files)

    def close(self) -> None:
        if self._journal_entries:
            self.compact()
        self._close_journal()

    # Journal -----------------------------------------------------------------------------

    @property
    def has_pending_changes(self) -> bool:
        """Changes in the journal that the JSON files do not show yet."""
        return self._journal_entries > 0

    def _append(self, record: dict[str, Any], *, fsync: bool = False) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        fd = self._journal()
        try:
            end = self.files.size(fd)
        except OSError as exc:
            raise self._append_error(exc) from exc
        try:
            write_all(self.files, fd, line)
            self._unsynced += 1
            if self.durable and (fsync or self._unsynced >= FSYNC_EVERY):
                self.files.fsync(fd)
                self._unsynced = 0
        except OSError as exc:
            self._cut_back(fd, end)
            raise self._append_error(exc) from exc
        self._journal_entries += 1
        if self._journal_entries >= max(MIN_COMPACT_ENTRIES, len(self.mappings)):
            self.compact()

    def _append_error(self, exc: OSError) -> StateWriteError:
        return StateWriteError(f"cannot append to {self.path(JOURNAL_FILE)}: {os_reason(exc)}")

    def _cut_back(self, fd: int, end: int) -> None:
        """Drop a partly written line, so the next record does not glue onto a fragment."""
        try:
            self.files.truncate(fd, end)
        except OSError:
            # The torn tail stays; replay skips it, and nothing more is appended after it.
            log.error("cannot truncate %s after a failed write", self.path(JOURNAL_FILE))
            self._journal_poisoned = True
            with contextlib.suppress(StateWriteError):  # the append's own error is the news
                self._close_journal()

    def _journal(self) -> int:
        if self._journal_poisoned:
            raise StateWriteError(
                f"{self.path(JOURNAL_FILE)} ends in a torn record; nothing more is appended "
                "until the journal is folded into the JSON files"
            )
        if self._journal_fd is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            try:
                self._journal_fd = self.files.open(self.path(JOURNAL_FILE), flags, FILE_MODE)
            except OSError as exc:
                raise self._append_error(exc) from exc
        return self._journal_fd

    def _close_journal(self) -> None:
        if self._journal_fd is not None:
            fd, self._journal_fd = self._journal_fd, None
            try:
                self.files.close(fd)
            except OSError as exc:
                raise self._append_error(exc) from exc

    def _replay_journal(self) -> int | None:
        """Apply the journal; None when there is none, else how many records applied."""
        try:
            raw = self.path(JOURNAL_FILE).read_bytes()
        except FileNotFoundError:
            return None
        applied = 0
        for number, line in enumerate(raw.splitlines(), start=1):
            try:
                record = json.loads(line)
            except ValueError:
                # A torn last line is a crash mid-append: the change was never acknowledged.
                log.warning("ignoring unreadable journal line %d", number)
                continue
            applied += self._apply(record)
        return applied

    def _apply(self, record: Any) -> int:
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind == "mapping" and isinstance(record.get("data"), dict):
            agent_id = str(record.get("agent_id"))
            self.mappings[agent_id] = AgentMapping.from_json(agent_id, record["data"])
        elif kind == "token" and isinstance(record.get("access_token"), str):
            self.tokens[str(record.get("user_id"))] = StoredToken(
                record["access_token"], record.get("device_id")
            )
        else:
            return 0
        return 1


def _as_object(data: Any, name: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StateFileError(f"{name} must hold a JSON object, found {type(data).__name__}")
    return data


def _load_mappings(path: Path) -> dict[str, AgentMapping]:
    data = _as_object(read_json(path), MAPPINGS_FILE)
    mappings = {}
    for agent_id, record in data.items():
        if not isinstance(record, dict):
            raise StateFileError(f"{MAPPINGS_FILE}: entry {agent_id!r} is not an object")
        mappings[agent_id] = AgentMapping.from_json(agent_id, record)
    return mappings


def _load_tokens(path: Path) -> dict[str, StoredToken]:
    tokens = {}
    for user_id, record in _as_object(read_json(path), TOKENS_FILE).items():
        if isinstance(record, dict) and isinstance(record.get("access_token"), str):
            device = record.get("device_id")
            tokens[user_id] = StoredToken(
                record["access_token"], device if isinstance(device, str) else None
            )
    return tokens
