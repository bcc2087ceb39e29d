"""A fault-injecting HTTP proxy on 127.0.0.1, between the library and a real homeserver.

Each request comes in on its own connection (the proxy answers with `Connection: close`) and
is forwarded to the upstream server on 127.0.0.1, unless a seeded draw picks a fault for it:

- `gateway_error`: answer 502 with an HTML page, upstream never sees the request;
- `gateway_error_after`: upstream acts on the request, the client still gets the 502;
- `cut_reply`: upstream acts, the client gets the first half of the reply, then the
  connection closes;
- `delay`: wait up to `max_delay` seconds before forwarding.

`restart_after(k, stop, start)` restarts the server behind the proxy once the k-th request is
in: the proxy stops listening (clients are refused, as by a stopped homeserver), lets the
requests in flight finish (or cuts them off), calls `stop`, waits, calls `start`, and listens
again on the same port. The proxy runs its own asyncio loop in a thread, so tests on any
backend (or none) use it: `with FaultProxy(upstream_port, seed=1) as proxy: ...`.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from app.testing.ports import stable_port

_HOST = "127.0.0.1"
_BAD_GATEWAY = b"<html><body><h1>502 Bad Gateway</h1><hr>fault proxy</body></html>"
_CONNECTION = re.compile(rb"^(connection|keep-alive):[^\r\n]*\r\n", re.IGNORECASE | re.MULTILINE)
IDLE_WAIT = 10.0  # seconds in-flight requests get before a restart goes ahead anyway
_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Faults:
    """Probability of each fault per request (drawn in this order; the rest pass)."""

    gateway_error: float = 0.0
    gateway_error_after: float = 0.0
    cut_reply: float = 0.0
    delay: float = 0.0
    max_delay: float = 1.0


@dataclass(frozen=True)
class _Restart:
    after: int
    stop: Callable[[], None]
    start: Callable[[], None]
    down_for: float
    cut_in_flight: bool


class FaultProxy:
    def __init__(self, upstream_port: int, *, seed: int = 0, faults: Faults | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = stable_port()  # it listens again on this port after a restart
        self.faults = faults or Faults()
        self._random = random.Random(seed)
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.restarted = threading.Event()
        self.requests_at_restart: int | None = None  # counted when the proxy listened again
        # Why the upstream server did not come back, if it did not (a test should say so).
        self.restart_error: BaseException | None = None
        self._restart: _Restart | None = None
        self._in_flight = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._idle: asyncio.Event | None = None  # made in the proxy's own loop
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def restart_after(
        self,
        requests: int,
        stop: Callable[[], None],
        start: Callable[[], None],
        *,
        down_for: float = 0.0,
        cut_in_flight: bool = False,
    ) -> None:
        """Restart the upstream server once `requests` more requests have come in.

        The requests in flight then finish first, or with `cut_in_flight` lose their replies
        at once (the server may have acted on them), as when a server is stopped under load.
        """
        after = self.requests + requests
        self._restart = _Restart(after, stop, start, down_for, cut_in_flight)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            if self._server is not None:
                self._server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    async def _listen(self) -> None:
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        self._server = await asyncio.start_server(self._serve, _HOST, self.port, reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._idle is not None
        self._in_flight += 1
        self._idle.clear()
        self._writers.add(writer)
        try:
            request = await _read_request(reader)
            if request is not None:
                self._count_and_maybe_restart()
                await self._answer(request, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away: nothing to answer
        finally:
            self._writers.discard(writer)
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
            writer.close()

    def _count_and_maybe_restart(self) -> None:
        self.requests += 1
        plan = self._restart
        if plan is not None and self.requests >= plan.after:
            self._restart = None
            self._loop.create_task(self._restart_upstream(plan))

    async def _answer(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        fault = self._draw()
        if fault != "pass":
            self.injected[fault] += 1
        if fault == "gateway_error":
            writer.write(_bad_gateway())
            return
        if fault == "delay":
            await asyncio.sleep(self._random.random() * self.faults.max_delay)
        reply = await self._forward(request)
        if reply is None or fault == "gateway_error_after":
            writer.write(_bad_gateway())
        elif fault == "cut_reply":
            writer.write(reply[: len(reply) // 2])
        else:
            writer.write(reply)
        await writer.drain()

    def _draw(self) -> str:
        f = self.faults
        roll = self._random.random()
        for name, chance in (
            ("gateway_error", f.gateway_error),
            ("gateway_error_after", f.gateway_error_after),
            ("cut_reply", f.cut_reply),
            ("delay", f.delay),
        ):
            if roll < chance:
                return name
            roll -= chance
        return "pass"

    async def _forward(self, request: bytes) -> bytes | None:
        """The upstream's whole reply, or None when it refuses the connection."""
        try:
            reader, writer = await asyncio.open_connection(_HOST, self.upstream_port)
        except OSError:
            return None
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read()  # `Connection: close`: the reply ends with the stream
        except OSError:
            return None
        finally:
            writer.close()

    async def _restart_upstream(self, plan: _Restart) -> None:
        assert self._server is not None and self._idle is not None
        self._server.close()  # new connections are refused from here on
        if plan.cut_in_flight:
            for writer in list(self._writers):
                writer.transport.abort()
        try:
            # In-flight requests finish first, but never hold the restart up for long: one
            # stuck on an upstream that never answers would keep the proxy closed for good.
            await asyncio.wait_for(self._idle.wait(), IDLE_WAIT)
        except asyncio.TimeoutError:
            for writer in list(self._writers):
                writer.transport.abort()
        try:
            await self._loop.run_in_executor(None, plan.stop)
            await asyncio.sleep(plan.down_for)
            await self._start_upstream(plan.start)
        finally:
            # Listen again whatever happened: a client then fails fast, and the test can
            # read `restart_error`, instead of both waiting out their budgets in silence.
            await self._listen()
            self.requests_at_restart = self.requests
            self.restarted.set()

    async def _start_upstream(self, start: Callable[[], None]) -> None:
        for _attempt in range(2):  # a loaded machine can miss one start-up deadline
            try:
                await self._loop.run_in_executor(None, start)
            except Exception as exc:
                self.restart_error = exc
            else:
                self.restart_error = None
                return


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request, its `Connection` header replaced by `Connection: close`."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    match = _LENGTH.search(head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    head = _CONNECTION.sub(b"", head)
    return head[:-2] + b"Connection: close\r\n\r\n" + body


def _bad_gateway() -> bytes:
    return (
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
        + f"Content-Length: {len(_BAD_GATEWAY)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + _BAD_GATEWAY
    )
