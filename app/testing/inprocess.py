"""`InProcessTransport`: serves requests straight from the fakes, with no HTTP library at all.

The demo uses it so that `letta-matrix-sync demo` needs neither a server nor respx. Tests
prefer `SyncHarness`, which goes through the real `HttpxTransport` and respx routes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

from app.errors import ConnectionFailed
from app.http.transport import Request, Response
from app.testing.fake_http import FakeRequest
from app.testing.fake_routing import RoutedFake


class InProcessTransport:
    def __init__(self, fakes: Sequence[RoutedFake]) -> None:
        self._fakes = list(fakes)
        self.requests = 0

    def _fake_for(self, url: str) -> RoutedFake:
        for fake in self._fakes:
            if url == fake.base_url or url.startswith(fake.base_url + "/"):
                return fake
        raise ConnectionFailed(f"no in-process server at {urlsplit(url).netloc}", maybe_sent=False)

    async def send(self, request: Request) -> Response:
        fake = self._fake_for(request.url)
        parts = urlsplit(request.url)
        fake_request = FakeRequest(
            method=request.method.upper(),
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={key.lower(): value for key, value in request.headers.items()},
            json=request.json,
        )
        self.requests += 1
        answer = fake.handle(fake_request)
        body = b"" if answer.json is None else json.dumps(answer.json).encode("utf-8")
        headers = {"content-type": "application/json", **answer.headers}
        return Response(answer.status, headers, body)

    async def aclose(self) -> None:
        return None
