"""`Lease`: which of several `run` replicas on one PostgreSQL database syncs (the leader).

The lease is a session advisory lock, held on a connection of the lease's own: PostgreSQL
frees it the moment that session ends, so a SIGKILLed leader's lease is free again as soon
as the kernel closes its socket. Taking the lease raises the fencing token in
`letta_matrix_sync_lease`; the leader opens each sync's store with that token, and every
write checks it (`PostgresStore`), so a leader paused past losing its session cannot write
over its successor.

Triggers travel through the database: any replica's `POST /sync` becomes a NOTIFY on
`TRIGGER_CHANNEL`, which every replica LISTENs to and only the leader acts on. psycopg
delivers a notification during the next statement on the connection, so the leader sees a
trigger at its next `refresh()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from app.errors import StateFileError
from app.paths import redact_url
from app.state.postgres import _reason, connect, migrate

try:
    import psycopg
except ImportError:  # pragma: no cover - the [postgres] extra is not installed
    psycopg = None  # type: ignore[assignment]

T = TypeVar("T")
LEASE_LOCK_KEY = 0x4C4D5303
TRIGGER_CHANNEL = "letta_matrix_sync_trigger"

_TAKE = """
UPDATE letta_matrix_sync_lease SET token = token + 1, holder = %s, acquired_at = now()
WHERE singleton RETURNING token
"""
_CURRENT = "SELECT token FROM letta_matrix_sync_lease WHERE singleton"


class Lease:
    """One replica's view of the lease; `refresh()` takes it when free and checks it held."""

    def __init__(self, url: str, holder: str) -> None:
        self._url = url
        self.holder = holder
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = anyio.Lock()
        self._triggers = 0
        # The fencing token while this replica leads, else None.
        self.token: int | None = None

    def __repr__(self) -> str:
        return f"Lease({redact_url(self._url)!r}, holder={self.holder!r}, token={self.token})"

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    async def refresh(self) -> bool:
        """Whether this replica leads now; `StateFileError` (and no lease) when the database
        cannot be reached - the next call connects again."""
        return await self._call(self._refresh)

    async def notify_leader(self) -> None:
        """Ask whichever replica leads for a sync now."""
        await self._call(self._notify)

    def take_triggers(self) -> int:
        """How many triggers arrived since the last call."""
        count, self._triggers = self._triggers, 0
        return count

    async def aclose(self) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._close)

    async def _call(self, work: Callable[[], T]) -> T:
        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(work)
            except psycopg.Error as exc:
                await anyio.to_thread.run_sync(self._close)
                raise StateFileError(
                    f"lost the lease connection to MATRIX_STORE_URL={redact_url(self._url)}: "
                    f"{_reason(exc)}"
                ) from None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self.token = None  # a new session holds no lock
            conn = connect(self._url)
            try:
                migrate(conn, self._url)
                conn.add_notify_handler(lambda _notice: self._count_trigger())
                conn.execute(f"LISTEN {TRIGGER_CHANNEL}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _count_trigger(self) -> None:
        self._triggers += 1

    def _refresh(self) -> bool:
        conn = self._connection()
        if self.token is None:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_LOCK_KEY,)).fetchone()
            if row and row[0]:
                taken = conn.execute(_TAKE, (self.holder,)).fetchone()
                self.token = int(taken[0]) if taken else None
                self._triggers = 0  # taking over syncs anyway
            return self.is_leader
        row = conn.execute(_CURRENT).fetchone()
        if not row or int(row[0]) != self.token:  # fenced off: step down
            conn.execute("SELECT pg_advisory_unlock(%s)", (LEASE_LOCK_KEY,))
            self.token = None
        return self.is_leader

    def _notify(self) -> None:
        self._connection().execute("SELECT pg_notify(%s, '')", (TRIGGER_CHANNEL,))

    def _close(self) -> None:
        conn, self._conn, self.token = self._conn, None, None
        if conn is None or conn.closed:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error:
            pass  # the session is gone, and its lock with it
        finally:
            conn.close()
