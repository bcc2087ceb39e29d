"""The HTTP layer every client stands on, below Matrix and Letta.

- `transport`: the seam, `Transport`, one method to implement (tests route it to respx).
- `httpx_transport`: the production implementation on a pooled `httpx.AsyncClient`.
- `calls`: `JsonApi`, JSON requests with retries, pacing and error mapping (`app.errors`).
- `retry`: which failures are retried, and how long to wait.
- `server_state`: what one run learned about a server (reachable, congested, rate gates).
- `paths`: URL path segments, quoted in one place, and URLs redacted for messages.

`from app.http import JsonApi` (and the other names of `calls`) works as before this was a
package.
"""

from app.http.calls import (
    ApiCall,
    JsonApi,
    Pacing,
    is_redirect,
    redirect_target,
    retry_after_seconds,
)

__all__ = [
    "ApiCall",
    "JsonApi",
    "Pacing",
    "is_redirect",
    "redirect_target",
    "retry_after_seconds",
]
