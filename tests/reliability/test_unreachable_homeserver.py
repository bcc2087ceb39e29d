"""An unreachable homeserver through the real CLI: exit 2, one clear line, and a bounded wait.

The process run is started in the background by the session fixture `unreachable_homeserver`
(tests/reliability/conftest.py); this module sorts last so the wait overlaps the other tests.
How long the CLI waits is checked in-process with an injected clock (the same CLI, the same
real `HttpxTransport` against a closed port on 127.0.0.1), never with a wall clock: a loaded
machine must not fail it. Real timings belong to the benchmarks.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from served_fakes import UnreachableRun, free_port, sync_env

from app.cli import main
from app.http import Pacing
from app.http.httpx_transport import HttpxTransport
from app.http.retry import RetryPolicy
from app.http.transport import Request, Response
from app.testing.clock import FakeClock
from app.testing.letta import FakeLetta, LettaHTTPServer

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
BUDGET = 5.0  # seconds of waiting an operator accepts before hearing that the URL is wrong


def test_unreachable_homeserver_exits_2_with_one_clear_line(
    unreachable_homeserver: UnreachableRun,
) -> None:
    run = unreachable_homeserver.finish()

    assert run.proc.returncode == 2, run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    message = [line for line in run.stderr.splitlines() if not LOG_LINE.match(line)]
    assert len(message) == 1, run.stderr
    assert message[0].startswith("error: ")
    assert f"127.0.0.1:{unreachable_homeserver.port}" in message[0]


class CountingHttpx:
    """The CLI's real transport, counting the connection attempts it makes."""

    def __init__(self) -> None:
        self.inner = HttpxTransport()
        self.urls: list[str] = []

    def attempts_at(self, base_url: str) -> int:
        return sum(1 for url in self.urls if url.startswith(base_url + "/"))

    async def send(self, request: Request) -> Response:
        self.urls.append(request.url)
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_unreachable_homeserver_is_reported_after_three_tries_and_under_five_seconds_of_waits(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    # Letta answers (the sync lists it first): what is counted is the homeserver's silence.
    letta = LettaHTTPServer(FakeLetta().handle)
    clock = FakeClock()
    # The worst jitter: every backoff at its longest.
    pacing = Pacing(sleep=clock.sleep, monotonic=clock.monotonic, random=lambda: 1.0)
    transport = CountingHttpx()
    err = io.StringIO()

    with letta:
        code = main(
            ["sync"],
            env=sync_env(url, letta.base_url, tmp_path / "data"),
            transport=transport,
            out=io.StringIO(),
            err=err,
            pacing=pacing,
        )

    assert code == 2, err.getvalue()
    assert transport.attempts_at(url) == RetryPolicy().max_connect_attempts == 3
    assert len(clock.sleeps) == 2
    assert sum(clock.sleeps) <= BUDGET
