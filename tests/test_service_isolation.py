"""A bridge hands the service its own transport: the service uses it and leaves it open."""

from __future__ import annotations

import pytest

from app.errors import ConnectionFailed
from app.http.transport import Request, Response, Transport
from app.sync.service import SyncService
from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio


class OwnedByTheBridge:
    """The bridge's transport: once closed, it sends nothing more."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.closed = False

    async def send(self, request: Request) -> Response:
        if self.closed:
            raise ConnectionFailed("the bridge's transport is closed", maybe_sent=False)
        return await self.inner.send(request)

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


async def test_the_service_leaves_the_callers_transport_open(sync_harness: SyncHarness) -> None:
    h = sync_harness
    first = h.letta.add_agent("First")
    transport = OwnedByTheBridge(h.transport())

    async with SyncService(h.config(), transport, pacing=h.clock.pacing()) as service:
        assert (await service.sync()).ok
    second = h.letta.add_agent("Second")
    async with SyncService(h.config(), transport, pacing=h.clock.pacing()) as service:
        report = await service.sync()

    assert not transport.closed
    assert report.ok, report.failures
    assert report.rooms_created == [second] and first not in report.rooms_created
