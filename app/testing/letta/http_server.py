"""A small real HTTP server on 127.0.0.1 that answers with a fake-Letta handler callable.

The contract tier points the real HTTP client at :attr:`LettaHTTPServer.base_url`; the
handler is the same ``Callable[[FakeRequest], FakeResponse]`` the in-process tier uses.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from app.testing.fake_http import FakeRequest, FakeResponse, parse_json_body

logger = logging.getLogger(__name__)

Handler = Callable[[FakeRequest], FakeResponse]
_HOST = "127.0.0.1"


def _to_fake_request(method: str, target: str, headers: dict[str, str], raw: bytes) -> FakeRequest:
    split = urllib.parse.urlsplit(target)
    query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
    return FakeRequest(
        method=method,
        path=urllib.parse.unquote(split.path),
        query=query,
        headers=headers,
        json=parse_json_body(raw),
    )


def _error_response(status: int, message: str) -> FakeResponse:
    return FakeResponse(status=status, json={"detail": message}, headers={})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle delays each by ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = _to_fake_request(self.command, self.path, headers, self._read_body())
        self.server.record(request)
        try:
            response = self.server.handler(request)
        except Exception as exc:  # a broken fake must answer, not hang the client
            logger.exception("fake Letta handler failed on %s %s", request.method, request.path)
            response = _error_response(500, f"fake handler error: {exc!r}")
        self._send(response)

    def _send(self, response: FakeResponse) -> None:
        empty = response.json is None or response.status in (204, 304)
        body = b"" if empty else json.dumps(response.json).encode()
        self.send_response(response.status)
        lowered = {k.lower() for k in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "content-type" not in lowered and body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake Letta: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Handler, record: Callable[[FakeRequest], None]) -> None:
        super().__init__((_HOST, 0), _RequestHandler)
        self.handler = handler
        self.record = record


class LettaHTTPServer:
    """Serve ``handler`` over HTTP on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[FakeRequest] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LettaHTTPServer is not running")
        return f"http://{_HOST}:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[FakeRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def _record(self, request: FakeRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("LettaHTTPServer is already running")
        self._server = _Server(self._handler, self._record)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-letta-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LettaHTTPServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
