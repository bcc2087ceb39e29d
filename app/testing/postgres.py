"""Run a real PostgreSQL on 127.0.0.1 for the store's tests: a throwaway cluster per session.

PostgreSQL refuses to run as root, so as root every server command goes through
`runuser -u postgres --` in a temporary directory that user owns; as anyone else the
commands run as that user. Binaries: env `POSTGRES_BIN`, else the newest of
/usr/lib/postgresql/*/bin. Trust authentication, no fsync: test data only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from itertools import count
from pathlib import Path

from app.testing.orphans import process_alive
from app.testing.synapse.server import free_port

_HOST = "127.0.0.1"
USER = "test"
RUN_AS = "postgres"


def postgres_bin() -> Path | None:
    configured = os.environ.get("POSTGRES_BIN")
    if configured:
        return Path(configured)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    return found[-1] if found else None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    bin_dir = postgres_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        return "PostgreSQL server binaries not found (set POSTGRES_BIN or install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL cannot be started"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install 'letta-matrix-sync[postgres]'"
    return None


_PREFIX = "lms-postgres-"
# The pid of the test process a cluster belongs to: a run that was killed (a CI time-out, a
# mutant's time limit, Ctrl-C twice) leaves its server behind, and the next run stops it.
_OWNER = "owner.pid"


def stop_orphans(directory: Path | None = None) -> list[Path]:
    """Stop and remove the clusters whose test process is gone; returns their directories."""
    found = []
    for root in Path(directory or tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        owner = root / _OWNER
        try:
            alive = process_alive(int(owner.read_text()))
        except (OSError, ValueError):
            continue  # not ours to judge: being set up, or written by another tool
        if alive:
            continue
        if (root / "data" / "postmaster.pid").exists():
            orphan = PostgresServer(root, 0)
            try:
                orphan._command("pg_ctl", "-D", str(orphan.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # already gone: its directory goes all the same
        shutil.rmtree(root, ignore_errors=True)
        found.append(root)
    return found


class PostgresServer:
    """One cluster; `new_database()` hands each test an empty database of its own."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self._names = count(1)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @classmethod
    def start(cls) -> PostgresServer:
        stop_orphans()
        root = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (root / _OWNER).write_text(str(os.getpid()))
        if os.geteuid() == 0:
            shutil.chown(root, RUN_AS, RUN_AS)
        server = cls(root, free_port())
        try:
            server._command(
                "initdb",
                "-D",
                str(server.data),
                "-A",
                "trust",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            server._pg_ctl("start")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{_HOST}:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def restart(self) -> None:
        """Stop and start again, as an operator's restart does: every session ends."""
        self._pg_ctl("restart")

    def _pg_ctl(self, action: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={_HOST} "
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.root / "server.log")  # not our pipes: the server outlives the call
        data = str(self.data)
        self._command("pg_ctl", "-D", data, "-l", log, "-m", "fast", "-w", "-o", options, action)

    def stop(self) -> None:
        try:
            self._command("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _command(self, program: str, *args: str) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None
        command = [str(bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stderr.strip()}\n{tail}")
