"""`StatusCounter`: a `Transport` wrapper that counts the answers by HTTP status and keeps
the address of every request.

For tests and benchmarks that must show, say, that a sync met no 429 at all, or how many
requests it made to the homeserver (`requests_to`).
"""

from __future__ import annotations

from collections import Counter

from app.http.transport import Request, Response, Transport


class StatusCounter:
    """Forwards requests to `inner` and counts the answers by status."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.statuses: Counter[int] = Counter()
        self.urls: list[str] = []

    def requests_to(self, base_url: str) -> list[str]:
        """The requests sent to `base_url` (the homeserver, say), as paths with queries."""
        prefix = base_url.rstrip("/")
        return [url[len(prefix) :] for url in self.urls if url.startswith(prefix + "/")]

    async def send(self, request: Request) -> Response:
        self.urls.append(request.url)
        response = await self.inner.send(request)
        self.statuses[response.status] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
