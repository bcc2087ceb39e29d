"""`Transport` over one shared `httpx.AsyncClient`: the only production module importing httpx."""

from __future__ import annotations

import ssl

import httpx

from app.errors import ConnectionFailed, RequestTimeout, TlsFailed, TransportError
from app.http.transport import Request, Response

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)


class HttpxTransport:
    """Sends requests through a pooled `httpx.AsyncClient`.

    Pass `client` to share one (tests pass a client built on `httpx.MockTransport`); the
    transport then leaves closing it to the caller. Without one it owns a client with explicit
    timeouts and connection limits.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        self._owns_client = client is None
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client = client or httpx.AsyncClient(timeout=timeout, limits=limits)

    async def send(self, request: Request) -> Response:
        extensions = {}
        if request.timeout is not None:
            extensions["timeout"] = httpx.Timeout(request.timeout).as_dict()
        try:
            response = await self._client.request(
                request.method,
                httpx.URL(request.url),
                headers=request.headers,
                json=request.json,
                extensions=extensions,
            )
        except httpx.ConnectTimeout as exc:
            raise RequestTimeout(_describe(request, exc), maybe_sent=False) from exc
        except httpx.ConnectError as exc:
            problem = _tls_problem(exc)
            if problem is not None:
                raise TlsFailed(f"{_describe(request, exc)} ({problem})", maybe_sent=False) from exc
            raise ConnectionFailed(_describe(request, exc), maybe_sent=False) from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeout(_describe(request, exc)) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(_describe(request, exc)) from exc
        except httpx.HTTPError as exc:
            raise TransportError(_describe(request, exc)) from exc
        except (httpx.InvalidURL, UnicodeEncodeError) as exc:
            # The request could not even be built: nothing was sent.
            raise TransportError(_describe(request, exc), maybe_sent=False) from exc
        return Response(response.status_code, dict(response.headers), response.content)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"HttpxTransport(owns_client={self._owns_client})"


_PLAIN_HTTP_HINT = "the TLS handshake failed: if this port speaks plain http, use http://"


def _tls_problem(exc: BaseException) -> str | None:
    """What went wrong in a TLS handshake the server or the client refused, if one did.

    A connection cut during the handshake (EOF) is an outage, not a TLS problem.
    """
    link: BaseException | None = exc
    visited: set[int] = set()  # exception chains can loop back on themselves
    while link is not None and id(link) not in visited:
        visited.add(id(link))
        if isinstance(link, ssl.SSLCertVerificationError):
            return f"the server's TLS certificate is not trusted: {link.verify_message}"
        if isinstance(link, ssl.SSLError) and not isinstance(
            link, (ssl.SSLEOFError, ssl.SSLZeroReturnError)
        ):
            return _PLAIN_HTTP_HINT
        link = link.__cause__ or link.__context__
    return None


def _describe(request: Request, exc: Exception) -> str:
    # Only method, URL path and the exception's class: never headers or body (tokens, passwords).
    path = request.url.split("?", 1)[0]
    return f"{request.method} {path}: {type(exc).__name__}"
