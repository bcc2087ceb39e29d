"""Small helpers for the respx-over-HttpxTransport tests: an instant clock and a transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from app.http.httpx_transport import HttpxTransport
from app.sync.report import SyncReport
from app.testing.clock import FakeClock
from app.testing.fake_http import FakeRequest, FakeResponse
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver

HOMESERVER = "http://localhost:8008"
LETTA = "http://localhost:8283"

__all__ = [
    "HOMESERVER",
    "LETTA",
    "CountingSyncs",
    "FakeClock",
    "body_of",
    "cli_env",
    "make_router",
    "make_transport",
    "req",
]


def make_router(base_url: str, *, assert_all_called: bool = False) -> respx.MockRouter:
    return respx.MockRouter(using=None, assert_all_called=assert_all_called, base_url=base_url)


def make_transport(router: respx.MockRouter) -> HttpxTransport:
    client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    return HttpxTransport(client)


def matrix_error(status: int, errcode: str, error: str = "nope", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"errcode": errcode, "error": error, **extra})


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def cli_env(h: SyncHarness, **extra: str) -> dict[str, str]:
    """The environment a `letta-matrix-sync` run against the harness's fakes needs."""
    env = {
        "MATRIX_HOMESERVER_URL": h.homeserver.base_url,
        "MATRIX_USERNAME": "letta",
        "MATRIX_PASSWORD": "bot-secret-password",
        "MATRIX_ADMIN_USERNAME": "admin",
        "MATRIX_ADMIN_PASSWORD": "admin-secret-password",
        "LETTA_API_URL": h.letta.base_url,
        "MATRIX_DATA_DIR": str(h.data_dir),
    }
    registration = h.base_config.appservice_registration
    if registration is not None:  # after `use_appservice`: the settings an operator has then
        env.update(
            MATRIX_PASSWORD="",
            MATRIX_ADMIN_PASSWORD="",
            MATRIX_APPSERVICE_REGISTRATION=str(registration),
        )
    return {**env, **extra}


def req(
    hs: FakeHomeserver,
    method: str,
    path: str,
    token: str | None = None,
    json: Any = None,
    query: dict[str, str] | None = None,
) -> FakeResponse:
    """One request to the fake homeserver's core, without HTTP."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return hs.handle(FakeRequest(method, path, query or {}, headers, json))


class CountingSyncs:
    """A daemon's sync that does nothing but count how often it ran."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> tuple[SyncReport, int]:
        self.count += 1
        return SyncReport(), 0
