"""The service's HTTP routes: /healthz, /readyz, /metrics and the POST /sync webhook."""

from __future__ import annotations

import hmac
import json

from app.daemon.http_server import HttpRequest, HttpResponse
from app.daemon.metrics import CONTENT_TYPE
from app.daemon.runner import SyncRunner
from app.errors import StateFileError


def _json(status: int, data: object) -> HttpResponse:
    return HttpResponse(status, (json.dumps(data) + "\n").encode())


class Routes:
    def __init__(self, runner: SyncRunner) -> None:
        self._runner = runner

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        route = (request.method, request.path)
        if route == ("GET", "/healthz"):
            return _json(200, {"ok": True})
        if route == ("GET", "/readyz"):
            readiness = self._runner.readiness()
            return _json(200 if readiness.ready else 503, readiness.to_json())
        if route == ("GET", "/metrics"):
            return HttpResponse(200, self._runner.metrics.exposition(), CONTENT_TYPE)
        if route == ("POST", "/sync"):
            return await self._webhook(request)
        if request.path in ("/healthz", "/readyz", "/metrics", "/sync"):
            return _json(405, {"error": f"{request.method} is not allowed on {request.path}"})
        return _json(404, {"error": "not found"})

    async def _webhook(self, request: HttpRequest) -> HttpResponse:
        settings = self._runner.settings
        if settings.webhook_token is None:
            if not settings.loopback:
                return _json(
                    403,
                    {"error": "set SYNC_WEBHOOK_TOKEN to accept POST /sync on a public address"},
                )
        elif not _bearer_matches(request.headers.get("authorization", ""), settings.webhook_token):
            return _json(401, {"error": "a valid 'Authorization: Bearer <token>' is required"})
        queued = self._runner.running
        try:
            forwarded = await self._runner.request_sync()
        except StateFileError as exc:
            return _json(503, {"error": f"cannot reach the leader: {exc}"})
        if forwarded:
            return _json(202, {"accepted": True, "forwarded_to_leader": True})
        return _json(202, {"accepted": True, "after_current_sync": queued})


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
