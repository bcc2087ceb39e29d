"""`LosingReplies`: a transport that lets a request reach the server, then loses its reply.

The worst moment for a client: the homeserver acted (made the room), the client never heard.
It wraps any `Transport`, so the same scenario runs on the fakes and on a real Synapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import RequestTimeout
from app.http.transport import Request, Response, Transport


@dataclass
class LosingReplies:
    inner: Transport
    method: str
    path_suffix: str
    skip: int = 0  # matching requests answered normally before the losses start
    lose: int = 1

    async def send(self, request: Request) -> Response:
        response = await self.inner.send(request)
        matches = request.method == self.method and urlsplit(request.url).path.endswith(
            self.path_suffix
        )
        if matches and self.skip:
            self.skip -= 1
        elif matches and self.lose:
            self.lose -= 1
            raise RequestTimeout(f"the reply to {self.method} {self.path_suffix} was lost")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
