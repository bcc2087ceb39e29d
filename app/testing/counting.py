"""`StatusCounter`: a `Transport` wrapper that counts the answers by HTTP status.

For tests and benchmarks that must show, say, that a sync met no 429 at all.
"""

from __future__ import annotations

from collections import Counter

from app.transport import Request, Response, Transport


class StatusCounter:
    """Forwards requests to `inner` and counts the answers by status."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.statuses: Counter[int] = Counter()

    async def send(self, request: Request) -> Response:
        response = await self.inner.send(request)
        self.statuses[response.status] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
