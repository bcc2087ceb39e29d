"""`Lease`: which of several `run` replicas on one PostgreSQL database syncs (the leader).

The lease is a session advisory lock, held on a connection of the lease's own: PostgreSQL
frees it the moment that session ends, so a SIGKILLed leader's lease is free again as soon
as the kernel closes its socket. Taking the lease raises the fencing token in
`letta_matrix_sync_lease`; the leader opens each sync's store with that token, and every
write checks it (`PostgresStore`), so a leader paused past losing its session cannot write
over its successor.

A leader that is paused, hung or frozen keeps its session, and with it the lock. So the
leader also renews a heartbeat (`renewed_at`, the database's clock) on every look at the
lease; a standby that finds it older than the time to live ends the silent leader's session
(`pg_terminate_backend`: the replicas share a database role, or hold `pg_signal_backend`)
and takes the lease. The leader, for its part, holds the lease only until its last renewal
plus the time to live, less a margin, on its own monotonic clock (`valid`): woken from a
pause, it knows it may no longer act before the database has told it anything.

Triggers travel through the database: any replica's `POST /sync` becomes a NOTIFY on
`TRIGGER_CHANNEL`, which every replica LISTENs to and only the leader acts on. psycopg
delivers a notification during the next statement on the connection, so the leader sees a
trigger at its next `refresh()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from app.errors import StateFileError
from app.http.paths import redact_url
from app.state.postgres import _reason, application_name, connect, migrate

try:
    import psycopg
except ImportError:  # pragma: no cover - the [postgres] extra is not installed
    psycopg = None  # type: ignore[assignment]

T = TypeVar("T")
LEASE_LOCK_KEY = 0x4C4D5303
TRIGGER_CHANNEL = "letta_matrix_sync_trigger"

_TAKE = """
UPDATE letta_matrix_sync_lease
SET token = token + 1, holder = %s, acquired_at = now(), renewed_at = now(), ttl_seconds = %s
WHERE singleton RETURNING token
"""
_RENEW = """
UPDATE letta_matrix_sync_lease SET renewed_at = now() WHERE singleton AND token = %s
RETURNING token
"""
# How long ago the leader renewed (seconds, the database's clock), and who it is.
_HEARTBEAT = """
SELECT extract(epoch FROM now() - renewed_at)::float8, holder, ttl_seconds
FROM letta_matrix_sync_lease WHERE singleton
"""
# The silent leader's sessions in this database: the one holding the lease's lock, and every
# other session of that process (the store of the sync it was in holds the sync's lock).
# Only while the heartbeat is still past its time to live, checked in the same statement: a
# leader that renewed meanwhile (or a replica that took the lease) is left alone.
_SILENT_LEADER = """
SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
WHERE a.pid <> pg_backend_pid() AND a.datname = current_database()
AND EXISTS (
    SELECT 1 FROM letta_matrix_sync_lease l
    WHERE l.singleton AND l.holder = %(holder)s
    AND now() - l.renewed_at > make_interval(secs => coalesce(l.ttl_seconds, %(ttl)s))
)
AND (
    a.application_name = %(application)s
    OR a.pid IN (
        SELECT k.pid FROM pg_locks k
        WHERE k.locktype = 'advisory' AND k.granted AND k.classid = 0 AND k.objid = %(key)s
        AND k.objsubid = 1
        AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    )
)
"""
# After ending a session, how long to wait for PostgreSQL to free its lock.
_LOCK_WAITS, _LOCK_WAIT = 30, 0.1
DEFAULT_TTL = 15.0


class Lease:
    """One replica's view of the lease; `refresh()` takes it when free and checks it held."""

    def __init__(
        self,
        url: str,
        holder: str,
        ttl: float = DEFAULT_TTL,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self.holder = holder
        self.ttl = ttl
        self._clock = clock
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = anyio.Lock()
        self._triggers = 0
        # The fencing token while this replica leads, else None.
        self.token: int | None = None
        # While leading: until when (monotonic clock) the lease is surely still ours.
        self._valid_until = 0.0
        # Seen by a standby: seconds since the leader renewed, who leads, and its time to live.
        self.leader_age: float | None = None
        self.leader: str | None = None
        self.leader_ttl = ttl

    def __repr__(self) -> str:
        return f"Lease({redact_url(self._url)!r}, holder={self.holder!r}, token={self.token})"

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    @property
    def margin(self) -> float:
        """The leader stops this long before a standby may take over: a request it sent
        just before has that long to arrive."""
        return self.ttl / 3

    def valid(self) -> bool:
        """Whether this replica leads and its lease cannot have lapsed (no I/O)."""
        return self.is_leader and self._clock() < self._valid_until

    def step_down(self) -> None:
        """Stop leading now (the lock is given back at the next look at the lease)."""
        self.token = None
        self._valid_until = 0.0

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
                # A silent leader's store may hold the lease row (a write's fencing check):
                # taking the lease waits for it a bounded time, never for ever.
                conn.execute("SET lock_timeout = '5s'")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _count_trigger(self) -> None:
        self._triggers += 1

    def _refresh(self) -> bool:
        conn = self._connection()
        if self.token is not None:
            return self._renew(conn)
        conn.execute("SELECT pg_advisory_unlock_all()")  # stepped down: the lock goes too
        if not self._try_lock(conn) and not self._take_from_silent_leader(conn):
            return False
        sent = self._clock()
        taken = conn.execute(_TAKE, (self.holder, self.ttl)).fetchone()
        self.token = int(taken[0]) if taken else None
        self._valid_until = sent + self.ttl - self.margin
        self.leader_age, self.leader = 0.0, self.holder
        self._triggers = 0  # taking over syncs anyway
        return self.is_leader

    def _take_from_silent_leader(self, conn: psycopg.Connection[Any]) -> bool:
        """End the sessions of a leader whose heartbeat is past its time to live; True once
        the lock is ours."""
        self._watch_leader(conn)
        if self.leader_age is None or self.leader_age <= self.leader_ttl:
            return False
        silent = {
            "holder": self.leader,
            "ttl": self.ttl,
            "application": application_name(self.leader or ""),
            "key": LEASE_LOCK_KEY,
        }
        if not conn.execute(_SILENT_LEADER, silent).fetchall():
            return False  # it renewed meanwhile, or another replica took over
        for _ in range(_LOCK_WAITS):  # the ended session's lock goes once its process exits
            if self._try_lock(conn):
                return True
            conn.execute("SELECT pg_sleep(%s)", (_LOCK_WAIT,))
        return False

    def _renew(self, conn: psycopg.Connection[Any]) -> bool:
        sent = self._clock()
        row = conn.execute(_RENEW, (self.token,)).fetchone()
        if not row:  # fenced off: another replica took the lease
            conn.execute("SELECT pg_advisory_unlock(%s)", (LEASE_LOCK_KEY,))
            self.step_down()
            return False
        self._valid_until = sent + self.ttl - self.margin
        self.leader_age, self.leader = 0.0, self.holder
        return True

    @staticmethod
    def _try_lock(conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_LOCK_KEY,)).fetchone()
        return bool(row and row[0])

    def _watch_leader(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(_HEARTBEAT).fetchone()
        self.leader_age = float(row[0]) if row and row[0] is not None else None
        self.leader = str(row[1]) if row and row[1] is not None else None
        self.leader_ttl = float(row[2]) if row and row[2] is not None else self.ttl

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
