"""`PostgresStore`: the `Store` in a PostgreSQL database named by MATRIX_STORE_URL.

Driver: psycopg 3, through its synchronous API in anyio worker threads. Its async API runs
on asyncio only, and this library also runs on trio; a worker thread per call works on both,
and a store call is one short statement. One connection per store, used by one thread at a
time (an anyio lock), in autocommit: every save is its own committed, durable transaction.

While open for writing, the store holds a session advisory lock: a second sync on the same
database gets `SyncLocked`, and the lock goes with the connection when a process dies.
Opened with a `fence` (a replica's lease token, see `app.state.lease`), every write commits
only while that token is still the current one: a leader paused past losing its lease
cannot overwrite what the new leader saved.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio

from app.errors import LeaseLost, StateFileError, StateWriteError, SyncLocked
from app.http.paths import redact_url
from app.state import migrations
from app.state.models import AgentMapping, SpaceConfig
from app.state.protocol import MemoryReads, StoredToken, moved_on

try:
    import psycopg
    from psycopg.types.json import Json
except ImportError:  # pragma: no cover - the [postgres] extra is not installed
    psycopg = None  # type: ignore[assignment]

T = TypeVar("T")
# pg_advisory_lock keys: one for "a sync runs", one for "migrations run".
SYNC_LOCK_KEY = 0x4C4D5301
MIGRATION_LOCK_KEY = 0x4C4D5302


_IDENTITIES: dict[int, str] = {}


def process_identity() -> str:
    """This process among all that use the database: a random part first (host names and
    pids repeat across containers, and PostgreSQL cuts names at 63 bytes), then host:pid."""
    pid = os.getpid()
    if pid not in _IDENTITIES:
        _IDENTITIES[pid] = f"{secrets.token_hex(6)} {socket.gethostname()}:{pid}"
    return _IDENTITIES[pid]


def application_name(identity: str) -> str:
    """Every session a process opens says whose it is: a replica that takes the lease from a
    silent one ends that process's sessions, and only those."""
    return f"letta-matrix-sync {identity}"[:63]


def connect(url: str) -> psycopg.Connection[Any]:
    if psycopg is None:
        raise StateFileError(
            "MATRIX_STORE_URL names PostgreSQL, but its driver is not installed: "
            "pip install 'letta-matrix-sync[postgres]'"
        )
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=10,
            application_name=application_name(process_identity()),
        )
    except psycopg.Error as exc:
        raise StateFileError(
            f"cannot connect to PostgreSQL (MATRIX_STORE_URL={redact_url(url)}): {_reason(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The highest migration applied; 0 for a database this library never touched."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (migrations.SCHEMA_TABLE,)).fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute(f"SELECT max(version) FROM {migrations.SCHEMA_TABLE}").fetchone()  # noqa: S608
    return int(found[0]) if found and found[0] is not None else 0


def refuse_newer(version: int, url: str) -> None:
    if version > migrations.LATEST:
        raise StateFileError(
            f"the database at MATRIX_STORE_URL={redact_url(url)} has schema version {version}, "
            f"newer than this letta-matrix-sync knows ({migrations.LATEST}): a newer release "
            "wrote it; upgrade letta-matrix-sync instead of running this one against it"
        )


def migrate(conn: psycopg.Connection[Any], url: str) -> int:
    """Apply the missing migrations (each in its own transaction); the version reached.

    Replicas starting together take turns through a transaction-scoped advisory lock.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(migrations.BOOTSTRAP)
        current = schema_version(conn)
        refuse_newer(current, url)
        for version, statements in migrations.MIGRATIONS:
            if version > current:
                conn.execute(statements)
                conn.execute(
                    f"INSERT INTO {migrations.SCHEMA_TABLE} (version) VALUES (%s)",  # noqa: S608
                    (version,),
                )
    return max(current, migrations.LATEST)


class PostgresStore(MemoryReads):
    def __init__(self, conn: psycopg.Connection[Any], url: str, fence: int | None = None) -> None:
        self._conn = conn
        self._url = url
        self._fence = fence
        self._lock = anyio.Lock()
        self.mappings: dict[str, AgentMapping] = {}
        self.space = SpaceConfig()
        self.tokens: dict[str, StoredToken] = {}
        # Whether the database holds a space config (export writes the file only then).
        self.space_saved = False

    @classmethod
    async def open(
        cls, url: str, *, read_only: bool = False, fence: int | None = None
    ) -> PostgresStore:
        """Connect, migrate and lock (or, `read_only`, only check the schema), then load.

        With `fence`, every write checks that lease token first (`LeaseLost` when stale)."""
        conn = await anyio.to_thread.run_sync(connect, url)
        store = cls(conn, url, fence)
        try:
            await store._run(store._prepare_read if read_only else store._prepare_write)
            await store._run(store._load)
        except BaseException:
            await anyio.to_thread.run_sync(conn.close)
            raise
        return store

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._url)!r}, {len(self.mappings)} mappings)"

    @property
    def location(self) -> str:
        return f"MATRIX_STORE_URL={redact_url(self._url)}"

    @property
    def has_pending_changes(self) -> bool:
        return False  # every save is committed before it returns

    async def save_mapping(self, mapping: AgentMapping, *, fsync: bool = False) -> None:
        await self._write(_UPSERT_MAPPING, (mapping.agent_id, Json(mapping.to_json())))
        self.mappings[mapping.agent_id] = mapping

    async def save_token(self, user_id: str, access_token: str, device_id: str | None) -> None:
        await self._write(_UPSERT_LOGIN, (user_id, access_token, device_id))
        self.tokens[user_id] = StoredToken(access_token, device_id)

    async def save_space(self, space: SpaceConfig) -> None:
        await self._write(_UPSERT_SPACE, (Json(space.to_json()),))
        self.space, self.space_saved = space, True

    async def save_all(
        self,
        mappings: Mapping[str, AgentMapping],
        tokens: Mapping[str, StoredToken],
        space: SpaceConfig | None,
    ) -> None:
        """Upsert many records in one transaction (`store import`): all or nothing."""

        def write() -> None:
            with self._conn.transaction(), self._conn.cursor() as cursor:
                self._check_fence()
                rows = [(m.agent_id, Json(m.to_json())) for m in mappings.values()]
                cursor.executemany(_UPSERT_MAPPING, rows)
                token_rows = [(u, t.access_token, t.device_id) for u, t in tokens.items()]
                cursor.executemany(_UPSERT_LOGIN, token_rows)
                if space is not None:
                    cursor.execute(_UPSERT_SPACE, (Json(space.to_json()),))

        await self._run(write, saving=True)
        self.mappings.update(mappings)
        self.tokens.update(tokens)
        if space is not None:
            self.space, self.space_saved = space, True

    async def compact(self) -> None:
        """Nothing to fold: the tables are the final form."""

    async def load_view(self) -> Any:
        def read() -> Any:
            if schema_version(self._conn) < 3:
                return None
            row = self._conn.execute(_SELECT_VIEW).fetchone()
            return moved_on(row[0], row[1]) if row else None

        return await self._run(read)

    async def save_view(self, data: Any) -> None:
        await self._write(_UPSERT_VIEW, (Json(data),))

    async def save_view_token(self, base: str, next_batch: str) -> None:
        await self._write(_MOVE_VIEW_ON, (Json({"base": base, "next_batch": next_batch}),))

    async def aclose(self) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._release_and_close)

    def _release_and_close(self) -> None:
        # Unlocked explicitly: the server ends a closed session a moment later, and a next
        # open in that moment would find the lock still held.
        try:
            if not self._conn.closed:
                self._conn.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error:
            pass  # the session is gone, and its locks with it
        finally:
            self._conn.close()

    async def _write(self, statement: str, params: tuple[Any, ...]) -> None:
        def write() -> None:
            with self._conn.transaction():
                self._check_fence()
                self._conn.execute(statement, params)

        await self._run(write, saving=True)

    def _check_fence(self) -> None:
        """Inside the write's transaction: FOR SHARE holds a new leader's token bump until
        this write commits, so a write either lands before the takeover or not at all."""
        if self._fence is None:
            return
        row = self._conn.execute(_SELECT_FENCE).fetchone()
        current = int(row[0]) if row else None
        if current != self._fence:
            raise LeaseLost(
                f"not saved: this replica's lease (token {self._fence}) was taken over "
                f"(token {current}) at {self.location}; the new leader syncs from here"
            )

    async def _run(self, call: Callable[[], T], *, saving: bool = False) -> T:
        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(call)
            except psycopg.Error as exc:
                kind = StateWriteError if saving else StateFileError
                verb = "save to" if saving else "read"
                raise kind(f"cannot {verb} PostgreSQL ({self.location}): {_reason(exc)}") from None

    def _prepare_write(self) -> None:
        migrate(self._conn, self._url)
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (SYNC_LOCK_KEY,)).fetchone()
        if not row or not row[0]:
            raise SyncLocked(
                f"another sync holds the lock of the database at {self.location}; "
                "try again when it ends"
            )

    def _prepare_read(self) -> None:
        refuse_newer(schema_version(self._conn), self._url)

    def _load(self) -> None:
        if schema_version(self._conn) == 0:
            return  # never migrated: an empty state, read without writing anything
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for agent_id, data in self._conn.execute(_SELECT_MAPPINGS):
                self.mappings[agent_id] = AgentMapping.from_json(agent_id, data)
            for user_id, token, device in self._conn.execute(_SELECT_LOGINS):
                self.tokens[user_id] = StoredToken(token, device)
            row = self._conn.execute(_SELECT_SPACE).fetchone()
            self.space = SpaceConfig.from_json(row[0]) if row else SpaceConfig()
            self.space_saved = row is not None


_UPSERT_MAPPING = """
INSERT INTO letta_matrix_sync_mappings (agent_id, data) VALUES (%s, %s)
ON CONFLICT (agent_id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()
"""
_UPSERT_LOGIN = """
INSERT INTO letta_matrix_sync_tokens (user_id, access_token, device_id) VALUES (%s, %s, %s)
ON CONFLICT (user_id) DO UPDATE
SET access_token = EXCLUDED.access_token, device_id = EXCLUDED.device_id, updated_at = now()
"""
_UPSERT_SPACE = """
INSERT INTO letta_matrix_sync_space (singleton, data) VALUES (true, %s)
ON CONFLICT (singleton) DO UPDATE SET data = EXCLUDED.data, updated_at = now()
"""
_SELECT_MAPPINGS = "SELECT agent_id, data FROM letta_matrix_sync_mappings ORDER BY seq"
_SELECT_LOGINS = (
    "SELECT user_id, access_token, device_id FROM letta_matrix_sync_tokens ORDER BY seq"
)
_SELECT_SPACE = "SELECT data FROM letta_matrix_sync_space"
_SELECT_VIEW = "SELECT data, position FROM letta_matrix_sync_view"
_UPSERT_VIEW = """
INSERT INTO letta_matrix_sync_view (singleton, data) VALUES (true, %s)
ON CONFLICT (singleton) DO UPDATE SET data = EXCLUDED.data, position = NULL, updated_at = now()
"""
_MOVE_VIEW_ON = "UPDATE letta_matrix_sync_view SET position = %s, updated_at = now()"
_SELECT_FENCE = "SELECT token FROM letta_matrix_sync_lease WHERE singleton FOR SHARE"
