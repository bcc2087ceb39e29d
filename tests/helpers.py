"""Small helpers for the respx-over-HttpxTransport tests: an instant clock and a transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from app.testing.clock import FakeClock
from app.transport_httpx import HttpxTransport

HOMESERVER = "http://localhost:8008"
LETTA = "http://localhost:8283"

__all__ = ["HOMESERVER", "LETTA", "FakeClock", "body_of", "make_router", "make_transport"]


def make_router(base_url: str, *, assert_all_called: bool = False) -> respx.MockRouter:
    return respx.MockRouter(using=None, assert_all_called=assert_all_called, base_url=base_url)


def make_transport(router: respx.MockRouter) -> HttpxTransport:
    client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    return HttpxTransport(client)


def matrix_error(status: int, errcode: str, error: str = "nope", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"errcode": errcode, "error": error, **extra})


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
