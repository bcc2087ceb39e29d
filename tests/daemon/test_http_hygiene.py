"""The service's HTTP side against clients that misbehave, over real sockets on 127.0.0.1:
a status for every bad request, limits on what a client may send, and health checks that
stay quick while others hold connections open."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import pytest
from anyio.abc import SocketStream

from app.daemon.http_server import Handler, HttpLimits, HttpRequest, HttpResponse, serve

pytestmark = pytest.mark.anyio

# Small limits, so that a test waits fractions of a second, not the defaults' ten.
LIMITS = HttpLimits(read_timeout=0.5, write_timeout=0.5, connection_lifetime=2.0)


async def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, b'{"ok": true}\n')


@asynccontextmanager
async def served(limits: HttpLimits = LIMITS, handler: Handler = healthz) -> AsyncIterator[int]:
    async with anyio.create_task_group() as group:
        port = await group.start(partial(serve, "127.0.0.1", 0, handler, limits=limits))
        yield port
        group.cancel_scope.cancel()


async def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        return await read_to_end(stream)


async def read_to_end(stream: SocketStream) -> bytes:
    received = b""
    with anyio.fail_after(5):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\n",  # HTTP/1.1 requires Host
    b"GET /healthz HTTP/1.1\r\nHost a\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
    b"POST /sync HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=range(len(MALFORMED)))
async def test_a_malformed_request_gets_400_and_the_connection_closes(
    request_bytes: bytes,
) -> None:
    async with served() as port:
        answer = await exchange(port, request_bytes)
    assert status_of(answer) == 400, answer
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("version", [b"9.9", b"2.0", b"0.9", b"1.2"])
async def test_an_http_version_other_than_1_0_and_1_1_gets_505(version: bytes) -> None:
    async with served() as port:
        answer = await exchange(port, b"GET /healthz HTTP/" + version + b"\r\nHost: a\r\n\r\n")
    assert status_of(answer) == 505, answer


async def test_a_transfer_coding_other_than_chunked_gets_501() -> None:
    """RFC 9112, 6.1: a coding the server does not understand is "not implemented"."""
    async with served() as port:
        answer = await exchange(
            port, b"POST /sync HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
        )
    assert status_of(answer) == 501, answer


async def test_http_1_0_and_1_1_are_answered() -> None:
    async with served() as port:
        old = await exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")
        new = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(old) == 200 and status_of(new) == 200


async def test_headers_over_the_limit_get_431() -> None:
    limits = HttpLimits(max_header_bytes=4096, read_timeout=0.5)
    async with served(limits) as port:
        header = b"X-Big: " + b"a" * 8192 + b"\r\n"
        answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + header + b"\r\n")
    assert status_of(answer) == 431, answer


async def test_a_body_over_the_limit_gets_413_before_it_is_read() -> None:
    async with served() as port:
        head = b"POST /sync HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n"
        answer = await exchange(port, head)
        chunked = b"POST /sync HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"%x\r\n" % 20000 + b"a" * 20000 + b"\r\n"
        streamed = await exchange(port, chunked + chunk)
    assert status_of(answer) == 413 and status_of(streamed) == 413


async def test_clients_that_stall_or_never_read_are_cut_off_and_health_checks_stay_quick() -> None:
    async with served() as port:
        slow = await anyio.connect_tcp("127.0.0.1", port)  # half a request, then nothing
        await slow.send(b"GET /healthz HTTP/1.1\r\nHo")
        greedy = await anyio.connect_tcp("127.0.0.1", port)  # pipelines, never reads
        pipelined = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" * 20000
        with anyio.move_on_after(3):
            await greedy.send(pipelined)  # the server stops reading once its writes block
        started = anyio.current_time()
        with anyio.fail_after(1):
            answer = await exchange(
                port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
        quick = anyio.current_time() - started
        assert status_of(answer) == 200 and quick < 1
        assert await read_to_end(slow) == b""  # the read timeout ended it, without an answer
        await slow.aclose()
        with anyio.fail_after(5):
            leftover = await read_to_end(greedy)  # the write timeout ended it
        await greedy.aclose()
    assert leftover.count(b"HTTP/1.1 200") < 20000


async def test_a_keep_alive_connection_is_closed_after_its_lifetime() -> None:
    async with served() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        answered, closed = 0, False
        with anyio.fail_after(5):
            while not closed:
                try:
                    await stream.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                    answered += (await stream.receive()).count(b"HTTP/1.1 200")
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    closed = True
    assert closed and answered > 1


async def test_a_refusal_says_why_in_one_json_line() -> None:
    async with served() as port:
        answer = await exchange(
            port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 400 and b"content-type: application/json" in head.lower()
    assert body.endswith(b"}\n") and body.count(b"\n") == 1
    assert json.loads(body)["error"]  # h11's reason, or "bad request"


async def test_the_route_is_the_path_without_its_query_string() -> None:
    """Probes and webhooks often append one (`?source=letta`)."""

    async def echo(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, json.dumps([request.method, request.path]).encode())

    async with served(handler=echo) as port:
        answer = await exchange(port, b"GET /healthz?probe=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == ["GET", "/healthz"]


async def test_a_body_sent_in_chunks_reaches_the_handler_whole() -> None:
    async def echo_body(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, request.body)

    chunked = (
        b"POST /sync HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n"
    )
    async with served(handler=echo_body) as port:
        answer = await exchange(port, chunked)

    assert answer.partition(b"\r\n\r\n")[2] == b"firstsecond"


async def test_a_body_of_exactly_the_limit_is_taken() -> None:
    async def size(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, str(len(request.body)).encode())

    limit = LIMITS.max_body_bytes
    chunked = b"POST /sync HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"%x\r\n" % limit + b"a" * limit + b"\r\n0\r\n\r\n"
    async with served(handler=size) as port:
        answer = await exchange(port, chunked + body)

    assert status_of(answer) == 200 and answer.endswith(str(limit).encode())
