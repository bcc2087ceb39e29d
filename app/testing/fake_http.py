"""Framework-free request/response values shared by the fake servers, plus a respx adapter.

The fakes implement ``handle(FakeRequest) -> FakeResponse`` without touching httpx, so the
same state machine can be served through respx (in-process) or a real local HTTP server.
Only :func:`respx_side_effect`, :func:`override_answer` and the two converters below know
about httpx.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

FakeHandler = Callable[["FakeRequest"], "FakeResponse"]
# What a test puts in place of one endpoint of a fake: a response given to every request, an
# exception raised for every request (e.g. ``httpx.ConnectError("down")``), or a function of
# the request that returns a response, or ``None`` to let the fake answer this one.
Override = httpx.Response | BaseException | Callable[[httpx.Request], "httpx.Response | None"]


@dataclass(frozen=True)
class FakeRequest:
    """One HTTP request as the fakes see it.

    ``path`` is the *decoded* path (``%21`` already turned into ``!``), ``headers`` has
    lower-case keys, ``json`` is the parsed body or ``None`` when the body is empty or not JSON.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any | None = None

    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header, if any."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass(frozen=True)
class FakeResponse:
    """One HTTP response: a status, a JSON-serialisable body and extra headers."""

    status: int
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def parse_json_body(content: bytes) -> Any | None:
    """The decoded JSON body, or None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return jsonlib.loads(content)
    except ValueError:
        return None


def fake_request_from_httpx(request: httpx.Request) -> FakeRequest:
    """Convert an httpx request (body already read) into a :class:`FakeRequest`."""
    return FakeRequest(
        method=request.method.upper(),
        path=request.url.path,
        query={key: request.url.params[key] for key in request.url.params},
        headers={key.lower(): value for key, value in request.headers.items()},
        json=parse_json_body(request.content),
    )


def httpx_response_from_fake(response: FakeResponse) -> httpx.Response:
    """Convert a :class:`FakeResponse` into an httpx response with a JSON body."""
    # ensure_ascii, like most servers: a lone surrogate travels as a valid "\ud800" escape.
    body = b"" if response.json is None else jsonlib.dumps(response.json).encode("ascii")
    headers = {"content-type": "application/json", **response.headers}
    return httpx.Response(response.status, content=body, headers=headers)


def respx_side_effect(handler: FakeHandler) -> Callable[..., httpx.Response]:
    """Wrap ``handler`` as a respx side effect.

    respx passes the named groups of a ``path__regex`` as keyword arguments; they are ignored
    because the handler parses the decoded path itself.
    """

    def side_effect(request: httpx.Request, **_groups: Any) -> httpx.Response:
        return httpx_response_from_fake(handler(fake_request_from_httpx(request)))

    return side_effect


def override_answer(override: Override, request: httpx.Request) -> httpx.Response | None:
    """The test's answer to ``request``: a fresh copy of a canned response, a raised
    exception, or what the test's function returns (``None``: the fake answers)."""
    if isinstance(override, httpx.Response):
        return httpx.Response(
            override.status_code, headers=override.headers, content=override.content
        )
    if isinstance(override, BaseException):
        raise override
    return override(request)
