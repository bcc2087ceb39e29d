"""The fake homeserver and fake Letta over real HTTP on 127.0.0.1, for real sync processes.

`LettaHTTPServer` serves any `FakeRequest -> FakeResponse` callable from worker threads; one
server carries both fakes (Matrix paths start with `/_matrix/`, Letta's with `/v1/`), so a
test pays for one server shutdown. The fakes are not thread-safe: every request is handled
under one lock. A `Trap` fires on the k-th successful request of one kind and can hold that
reply back (the server acted, the client is still waiting) until the test has killed the
client. A `gate` parks every request until the test opens it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.homeserver import FakeHomeserver
from app.testing.letta import FakeLetta
from app.testing.letta import http_server as letta_http
from app.testing.letta.http_server import LettaHTTPServer

BOT, BOT_PASSWORD = "letta", "bot-process-password-5c1b"
ADMIN, ADMIN_PASSWORD = "admin", "admin-process-password-8e2f"
WAIT = 60.0  # generous: a loaded CI machine may be slow, and nothing here waits when all is well


@dataclass
class Trap:
    method: str
    path_suffix: str
    k: int
    hold: bool
    seen: int = 0
    fired: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def springs(self, request: FakeRequest, response: FakeResponse) -> bool:
        if request.method != self.method or not request.path.endswith(self.path_suffix):
            return False
        if response.status != 200:
            return False
        self.seen += 1
        return self.seen == self.k


@dataclass
class Served:
    """Both fakes on 127.0.0.1. Use as a context manager."""

    homeserver: FakeHomeserver = field(default_factory=lambda: FakeHomeserver(seed=7))
    letta: FakeLetta = field(default_factory=FakeLetta)
    trap: Trap | None = None
    gate: threading.Event | None = None
    first_request: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # When each request that creates something (a user, a room) arrived (monotonic clock).
    creates: list[float] = field(default_factory=list)

    def handle_matrix(self, request: FakeRequest) -> FakeResponse:
        self.first_request.set()
        if request.method == "POST" and request.path.endswith(("/register", "/createRoom")):
            self.creates.append(time.monotonic())
        if self.gate is not None:
            self.gate.wait(WAIT)
        with self.lock:
            response = self.homeserver.handle(request)
            trap = self.trap if self.trap and self.trap.springs(request, response) else None
        if trap is not None:
            trap.fired.set()
            if trap.hold:
                trap.release.wait(WAIT)
        return response

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path.startswith("/_matrix/"):
            return self.handle_matrix(request)
        with self.lock:
            return self.letta.handle(request)

    @contextmanager
    def running(self) -> Iterator[tuple[str, str]]:
        """Serve both fakes; yields the homeserver URL and the Letta URL (the same server)."""
        server = QuickHTTPServer(self.handle)
        server.start()
        try:
            yield server.base_url, server.base_url
        finally:
            # Never leave a server thread parked on an event.
            if self.trap is not None:
                self.trap.release.set()
            if self.gate is not None:
                self.gate.set()
            # `stop` waits up to half a second for the serve loop to notice; nothing needs
            # that wait, so it happens in the background.
            threading.Thread(target=server.stop, name="stop-fake-http", daemon=True).start()


class _NoDelayHandler(letta_http._RequestHandler):
    disable_nagle_algorithm = True


class QuickHTTPServer(LettaHTTPServer):
    """`LettaHTTPServer` with TCP_NODELAY on its connections.

    `LettaHTTPServer` writes the status line and headers and then the body in separate sends
    without TCP_NODELAY: on a kept-alive connection Nagle's algorithm and the client's delayed
    ACK stall every response by about 40 ms. (Proposed upstream fix: set
    `disable_nagle_algorithm = True` on `app.testing.letta.http_server._RequestHandler`.)
    """

    def start(self) -> None:
        super().start()
        server = self._server
        assert server is not None
        server.RequestHandlerClass = _NoDelayHandler  # read per connection, none accepted yet


def sync_env(matrix_url: str, letta_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no inherited MATRIX_/LETTA_ settings and no proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MATRIX_", "LETTA_", "HISTORY_", "SYNC_"))
        and "proxy" not in key.lower()
    }
    env.update(
        MATRIX_HOMESERVER_URL=matrix_url,
        MATRIX_USERNAME=BOT,
        MATRIX_PASSWORD=BOT_PASSWORD,
        MATRIX_ADMIN_USERNAME=ADMIN,
        MATRIX_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LETTA_API_URL=letta_url,
        MATRIX_DATA_DIR=str(data_dir),
        HISTORY_IMPORT_LIMIT="0",
        SYNC_CONCURRENCY="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class SyncProcess:
    """`python -m app sync` with its output in files (pipes could fill up and block it)."""

    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path
    started: float
    ended: float | None = None

    @classmethod
    def start(
        cls, env: dict[str, str], workdir: Path, name: str, *args: str, command: str = "sync"
    ) -> SyncProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "app", command, *args],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=err,
            )
        process = cls(proc, out_path, err_path, time.monotonic())
        threading.Thread(target=process._watch, name=f"watch-{name}", daemon=True).start()
        return process

    def _watch(self) -> None:
        self.proc.wait()
        self.ended = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds from start to exit (the process must have exited)."""
        assert self.ended is not None
        return self.ended - self.started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 2 * WAIT) -> int:
        code = self.proc.wait(timeout=timeout)
        wait_for(lambda: self.ended is not None, timeout=5)
        return code

    def kill(self) -> int:
        self.proc.kill()  # SIGKILL on POSIX
        return self.proc.wait(timeout=WAIT)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")


def wait_for(event: Callable[[], bool], *processes: SyncProcess, timeout: float = WAIT) -> bool:
    """Poll until `event()` holds; False when time runs out or every process has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if event():
            return True
        if processes and all(p.proc.poll() is not None for p in processes):
            return event()
        time.sleep(0.01)
    return False


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class UnreachableRun:
    """`python -m app sync` against a homeserver port nothing listens on."""

    port: int
    process: SyncProcess

    def finish(self) -> SyncProcess:
        self.process.wait()
        return self.process
