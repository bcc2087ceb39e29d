"""A `Transport` wrapper that counts requests by a normalised kind, for any server.

The kind is derived from the method and the URL path alone (ids dropped, event types kept),
so the same names describe traffic to the in-process fake and to a real Synapse.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import unquote, urlsplit

from app.http.transport import Request, Response, Transport

MATRIX = "matrix"
LETTA = "letta"
OTHER = "other"

_ROOM_ACTIONS = {"join", "leave", "invite", "joined_members", "members", "messages", "redact"}


def _segments(path: str) -> list[str]:
    return [unquote(part) for part in path.split("/") if part]


def matrix_kind(method: str, path: str) -> str:
    """`createRoom`, `join`, `put_state m.space.child`, `hierarchy`, ... for a Matrix path."""
    parts = _segments(path)
    if parts[:3] == ["_matrix", "client", "versions"]:
        return "versions"
    rest = parts[3:]  # after /_matrix/client/<version>
    if not rest:
        return f"{method} ?"
    head = rest[0]
    if head == "register":
        return "register_available" if rest[1:] == ["available"] else "register"
    if head == "account" and rest[1:] == ["whoami"]:
        return "whoami"
    if head == "profile" and len(rest) >= 3:
        return f"{'put' if method == 'PUT' else 'get'} {rest[2]}"
    if head == "join":
        return "join"
    if head == "rooms" and len(rest) >= 3:
        return _room_kind(method, rest[2:])
    if head in ("login", "logout", "createRoom", "joined_rooms", "sync"):
        return head
    return f"{method} {head}"


def _room_kind(method: str, action: list[str]) -> str:
    name = action[0]
    if name == "state":
        if len(action) == 1:
            return "get_state"
        verb = "put_state" if method == "PUT" else "get_state_event"
        return f"{verb} {action[1]}"
    if name == "send" and len(action) >= 2:
        return f"send {action[1]}"
    if name in _ROOM_ACTIONS or name == "hierarchy":
        return name
    return f"{method} rooms/{name}"


def letta_kind(method: str, path: str) -> str:
    parts = _segments(path)
    if parts[:2] != ["v1", "agents"]:
        return f"{method} {'/'.join(parts[:2])}"
    if len(parts) == 2:
        return "list_agents"
    if len(parts) == 3:
        return "get_agent"
    return parts[3]


def classify(method: str, url: str) -> tuple[str, str]:
    """`(server, kind)` for one request: server is `matrix`, `letta` or `other`."""
    path = urlsplit(url).path
    if path.startswith("/_matrix/"):
        return MATRIX, matrix_kind(method.upper(), path)
    if path.startswith("/v1/"):
        return LETTA, letta_kind(method.upper(), path)
    return OTHER, f"{method.upper()} {path}"


class CountingTransport:
    """Forwards every request to `inner` and counts it (also when it fails)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.counts: dict[str, Counter[str]] = {name: Counter() for name in (MATRIX, LETTA, OTHER)}

    async def send(self, request: Request) -> Response:
        server, kind = classify(request.method, request.url)
        self.counts[server][kind] += 1
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def reset(self) -> None:
        for counter in self.counts.values():
            counter.clear()

    @property
    def matrix(self) -> Counter[str]:
        return self.counts[MATRIX]

    @property
    def letta(self) -> Counter[str]:
        return self.counts[LETTA]
