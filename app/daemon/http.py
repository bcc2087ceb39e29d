"""A tiny HTTP/1.1 server on anyio streams, with h11 for the protocol.

Why not a server library: the well-kept ASGI servers either run on asyncio only (uvicorn) or
need a backend-specific entry point and their own signal handling (hypercorn). The service
answers four small routes, so h11 (the parser under httpcore and hypercorn) on anyio's own
streams runs unchanged on asyncio and trio, inside the service's task group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute

MAX_BODY = 64 * 1024
READ_TIMEOUT = 10.0


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


async def serve_connection(stream: ByteStream, handler: Handler) -> None:
    """Answer the requests of one connection (keep-alive) until the client is done."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
    async with stream:
        while True:
            try:
                with anyio.fail_after(READ_TIMEOUT):
                    request = await _read_request(conn, stream)
            except (TimeoutError, h11.RemoteProtocolError, anyio.BrokenResourceError):
                return
            if request is None:
                return
            response = await handler(request)
            try:
                await _send(conn, stream, response)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return


async def _read_request(conn: h11.Connection, stream: ByteStream) -> HttpRequest | None:
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
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise h11.RemoteProtocolError("body too large")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
            target = head.target.decode("latin-1").split("?", 1)[0]
            return HttpRequest(head.method.decode(), target, headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _send(conn: h11.Connection, stream: ByteStream, response: HttpResponse) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("cache-control", "no-store"),
    ]
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
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on host:port until cancelled; reports the bound port (port 0 picks one)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = listener.extra(SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    task_status.started(bound)

    async def one(stream: ByteStream) -> None:
        await serve_connection(stream, handler)

    await listener.serve(one)
