"""Endpoint table, request counting, fault injection and respx mounting shared by the fakes."""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from app.testing.fake_http import (
    FakeRequest,
    FakeResponse,
    Override,
    override_answer,
    respx_side_effect,
)

if TYPE_CHECKING:  # respx is a test dependency; the in-process demo runs without it
    import httpx
    import respx

RouteHandler = Callable[[FakeRequest, dict[str, str]], FakeResponse]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: a kind, a method and a path regex.

    The kind names the endpoint everywhere: in ``kinds``, ``requests_by_kind``,
    ``fail_next``, ``override`` and as the name of its respx route.

    ``pattern`` is relative to the fake's base path and must match the whole decoded path;
    its named groups are handed to ``handler`` (groups that did not take part are dropped).
    """

    kind: str
    method: str
    pattern: str
    handler: RouteHandler


class RoutedFake:
    """Dispatches :class:`FakeRequest` objects over an endpoint table.

    Subclasses pass their endpoints and override :meth:`unrecognized` for their error shape.
    """

    def __init__(self, base_url: str, endpoints: Sequence[Endpoint]) -> None:
        parts = urlsplit(base_url)
        if not parts.scheme or not parts.hostname:
            raise ValueError(f"base_url needs a scheme and a host: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
        self._prefix = parts.path.rstrip("/")
        self._endpoints = tuple(endpoints)
        self._compiled = tuple(re.compile(ep.pattern) for ep in self._endpoints)
        self._faults: dict[str, deque[FakeResponse | None]] = {}
        self._overrides: dict[str, Override] = {}
        self.requests_by_kind: Counter[str] = Counter()

    @property
    def kinds(self) -> tuple[str, ...]:
        """All endpoint kinds (``"createRoom"``, ``"send"``, ...), also the respx route names."""
        return tuple(ep.kind for ep in self._endpoints)

    def fail_next(
        self,
        kind: str,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer ``times`` requests of ``kind`` with a canned response, once ``after`` more
        requests of that kind have been served normally.

        The request is still counted in ``requests_by_kind`` but does not reach the state.
        """
        queue = self._faults.setdefault(self._known_kind(kind), deque())
        queue.extend([None] * after)
        for _ in range(times):
            queue.append(FakeResponse(status, body, dict(headers or {})))

    def clear_faults(self) -> None:
        """Drop every queued canned response."""
        self._faults.clear()

    def pending_faults(self, kind: str) -> int:
        """How many canned responses are still queued for ``kind``."""
        return sum(1 for f in self._faults.get(self._known_kind(kind), ()) if f is not None)

    def override(self, kind: str, answer: Override | None) -> None:
        """Answer requests of ``kind`` that come through the respx routes with ``answer``
        instead of the fake (``None`` gives the endpoint back to the fake).

        ``answer`` is an ``httpx.Response`` (a copy for every request), an exception to raise,
        or a function ``(httpx.Request) -> httpx.Response | None``; ``None`` from it lets the
        fake answer that request. Requests it answers count in ``requests_by_kind`` (a raised
        exception does not: nothing answered) and never reach the fake's state; queued
        ``fail_next`` answers wait until the override is gone.
        """
        kind = self._known_kind(kind)
        if answer is None:
            self._overrides.pop(kind, None)
        else:
            self._overrides[kind] = answer

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Serve one request: count it, then a queued fault or the real handler."""
        path = self._relative_path(request.path)
        method_mismatch = False
        for endpoint, regex in zip(self._endpoints, self._compiled, strict=True):
            match = regex.fullmatch(path) if path is not None else None
            if match is None:
                continue
            if endpoint.method != request.method.upper():
                method_mismatch = True
                continue
            self.requests_by_kind[endpoint.kind] += 1
            fault = self._pop_fault(endpoint.kind)
            if fault is not None:
                return fault
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            return endpoint.handler(request, groups)
        return self.unrecognized(request, method_mismatch)

    def unrecognized(self, request: FakeRequest, method_mismatch: bool) -> FakeResponse:
        """The answer for a request no endpoint matches (subclasses give their own shape)."""
        return FakeResponse(405 if method_mismatch else 404, {"error": "unrecognized"})

    def mount(self, router: respx.MockRouter) -> None:
        """Register one respx route per endpoint, named by its kind, served by :meth:`handle`
        (or by the test's :meth:`override` of that kind)."""
        for endpoint in self._endpoints:
            router.route(
                name=endpoint.kind,
                method=endpoint.method,
                scheme=self._scheme,
                host=self._host,
                port=self._port,
                path__regex=f"^{re.escape(self._prefix)}{endpoint.pattern}$",
            ).mock(side_effect=self._route_effect(endpoint.kind))

    def _route_effect(self, kind: str) -> Callable[..., httpx.Response]:
        serve = respx_side_effect(self.handle)

        def side_effect(request: httpx.Request, **groups: Any) -> httpx.Response:
            override = self._overrides.get(kind)
            answer = None if override is None else override_answer(override, request)
            if answer is None:
                return serve(request, **groups)
            self.requests_by_kind[kind] += 1
            return answer

        return side_effect

    def _relative_path(self, path: str) -> str | None:
        if not self._prefix:
            return path
        if path == self._prefix or path.startswith(self._prefix + "/"):
            return path[len(self._prefix) :] or "/"
        return None

    def _known_kind(self, kind: str) -> str:
        if kind not in self.kinds:
            raise ValueError(f"unknown endpoint kind {kind!r}; known: {', '.join(self.kinds)}")
        return kind

    def _pop_fault(self, kind: str) -> FakeResponse | None:
        queue = self._faults.get(kind)
        if not queue:
            return None
        return queue.popleft()
