"""The HTTP seam: one request in, one response out.

Everything above this module speaks in these small values, so the library never depends on a
particular HTTP client and tests swap the network for in-process routes without patching.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from app.errors import MalformedResponse


@dataclass(frozen=True)
class Request:
    """An HTTP request ready to be sent. `url` is absolute and already percent-encoded."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    timeout: float | None = None

    def __repr__(self) -> str:
        # Headers carry bearer tokens and bodies carry passwords: keep both out of reprs.
        return f"Request({self.method} {self.url})"


@dataclass(frozen=True)
class Response:
    """An HTTP response with its full body read."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> Any:
        """The decoded JSON body; `MalformedResponse` when the body is not JSON."""
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError):
            # A successful body can hold an access token (login, register): never keep it.
            body = self.content if self.status >= 400 else None
            raise MalformedResponse(self.status, "body is not JSON", body) from None

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.content)} bytes)"


@runtime_checkable
class Transport(Protocol):
    """Sends one request and returns its response.

    Implementations map their own network failures to `app.errors.TransportError`
    subclasses (`ConnectionFailed`, `RequestTimeout`); HTTP error statuses are *not*
    exceptions at this layer.
    """

    async def send(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...
