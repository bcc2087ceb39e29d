"""A tiny HTTP/1.1 server on anyio streams, with h11 for the protocol.

Why not a server library: the well-kept ASGI servers either run on asyncio only (uvicorn) or
need a backend-specific entry point and their own signal handling (hypercorn). The service
answers four small routes, so h11 (the parser under httpcore and hypercorn) on anyio's own
streams runs unchanged on asyncio and trio, inside the service's task group.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute


@dataclass(frozen=True)
class HttpLimits:
    """What one client may take: a misbehaving client is answered (400, 413, 431, 505) or cut
    off, and never holds a task or a connection for long."""

    max_header_bytes: int = 16 * 1024
    # POST /sync needs no body; a small one (a webhook's JSON) is read and ignored.
    max_body_bytes: int = 16 * 1024
    read_timeout: float = 10.0
    # A client that sends requests but never reads our answers blocks our writes.
    write_timeout: float = 10.0
    connection_lifetime: float = 300.0


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


async def serve_connection(
    stream: ByteStream, handler: Handler, limits: HttpLimits = HttpLimits()
) -> None:
    """Answer the requests of one connection (keep-alive) until the client is done."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
    async with stream:
        with anyio.move_on_after(limits.connection_lifetime):
            while await _answer_one(conn, stream, handler, limits):
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return


async def _answer_one(
    conn: h11.Connection, stream: ByteStream, handler: Handler, limits: HttpLimits
) -> bool:
    """Read one request and answer it; False when the connection is done."""
    try:
        with anyio.fail_after(limits.read_timeout):
            request = await _read_request(conn, stream, limits)
    except h11.RemoteProtocolError as exc:
        return await _refuse(conn, stream, limits, _Refused(exc.error_status_hint, str(exc)))
    except _Refused as refused:
        return await _refuse(conn, stream, limits, refused)
    except (TimeoutError, anyio.BrokenResourceError):
        return False
    if request is None:
        return False
    response = await handler(request)
    if not await _send_within(conn, stream, response, limits):
        return False
    return conn.our_state is not h11.MUST_CLOSE and conn.their_state is not h11.MUST_CLOSE


async def _refuse(
    conn: h11.Connection, stream: ByteStream, limits: HttpLimits, refused: _Refused
) -> bool:
    """Answer a request we will not serve, when h11 still lets us, and close."""
    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
        body = (json.dumps({"error": str(refused) or "bad request"}) + "\n").encode()
        await _send_within(conn, stream, HttpResponse(refused.status, body), limits, close=True)
    return False


async def _send_within(
    conn: h11.Connection,
    stream: ByteStream,
    response: HttpResponse,
    limits: HttpLimits,
    *,
    close: bool = False,
) -> bool:
    try:
        with anyio.fail_after(limits.write_timeout):
            await _send(conn, stream, response, close=close)
    except (TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return False
    except h11.LocalProtocolError:
        return False  # the client's state allows no answer (its request was cut short)
    return True


async def _read_request(
    conn: h11.Connection, stream: ByteStream, limits: HttpLimits
) -> HttpRequest | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                data = b""
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            head = event
            _check_head(head, limits)
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > limits.max_body_bytes:
                raise _Refused(413, f"the body is over {limits.max_body_bytes} bytes")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
            target = head.target.decode("latin-1").split("?", 1)[0]
            return HttpRequest(head.method.decode(), target, headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


def _check_head(head: h11.Request, limits: HttpLimits) -> None:
    if head.http_version not in (b"1.0", b"1.1"):
        raise _Refused(505, "only HTTP/1.0 and HTTP/1.1 are served")
    # h11 bounds a head that arrives in pieces; one that came whole is measured here.
    size = len(head.target) + sum(len(name) + len(value) + 4 for name, value in head.headers)
    if size > limits.max_header_bytes:
        raise _Refused(431, f"the request's head is over {limits.max_header_bytes} bytes")
    for name, value in head.headers:
        if name == b"content-length" and int(value) > limits.max_body_bytes:
            raise _Refused(413, f"the body is over {limits.max_body_bytes} bytes")


async def _send(
    conn: h11.Connection, stream: ByteStream, response: HttpResponse, *, close: bool = False
) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("cache-control", "no-store"),
    ]
    if close:
        headers.append(("connection", "close"))
    for event in (
        h11.Response(status_code=response.status, headers=headers),
        h11.Data(data=response.body),
        h11.EndOfMessage(),
    ):
        data = conn.send(event)
        if data:
            await stream.send(data)


async def serve(
    host: str,
    port: int,
    handler: Handler,
    *,
    limits: HttpLimits = HttpLimits(),
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on host:port until cancelled; reports the bound port (port 0 picks one)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = listener.extra(SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    task_status.started(bound)

    async def one(stream: ByteStream) -> None:
        await serve_connection(stream, handler, limits)

    await listener.serve(one)
