"""HttpxTransport: the one httpx-facing module, exercised through httpx.MockTransport."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from app.errors import ConnectionFailed, RequestTimeout, TlsFailed, TransportError
from app.http.httpx_transport import HttpxTransport
from app.http.retry import is_retryable
from app.http.transport import Request, Response, Transport

from helpers import HOMESERVER, body_of, make_router, make_transport

pytestmark = pytest.mark.anyio

URL = f"{HOMESERVER}/_matrix/client/v3/rooms/%21r%3Alocalhost/state"
SECRET = "syt_transport_secret"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with make_router(HOMESERVER, assert_all_called=True) as mock_router:
        yield mock_router


async def test_send_returns_status_headers_and_body(router: respx.MockRouter) -> None:
    route = router.put(path="/_matrix/client/v3/rooms/!r:localhost/state").respond(
        201, content=b'{"event_id": "$e"}', headers={"Content-Type": "application/json"}
    )
    transport = make_transport(router)
    response = await transport.send(
        Request("PUT", URL, {"Authorization": f"Bearer {SECRET}"}, {"name": "x"}, timeout=2.5)
    )
    assert isinstance(response, Response)
    assert response.status == 201
    assert response.header("content-type") == "application/json"
    assert response.header("CONTENT-TYPE") == "application/json"
    assert response.content == b'{"event_id": "$e"}'
    assert response.json() == {"event_id": "$e"}
    sent = route.calls.last.request
    assert sent.method == "PUT"
    assert sent.url.raw_path == b"/_matrix/client/v3/rooms/%21r%3Alocalhost/state"
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert body_of(sent) == {"name": "x"}
    assert sent.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


async def test_send_without_json_sends_no_body(router: respx.MockRouter) -> None:
    route = router.get(path="/_matrix/client/v3/rooms/!r:localhost/state").respond(200, json=[])
    response = await make_transport(router).send(Request("GET", f"{URL}?a=1%2F2"))
    assert response.json() == []
    sent = route.calls.last.request
    assert sent.content == b""
    assert sent.url.query == b"a=1%2F2"


async def test_error_statuses_are_responses_not_exceptions(router: respx.MockRouter) -> None:
    router.get(path="/_matrix/client/v3/rooms/!r:localhost/state").respond(503, text="busy")
    response = await make_transport(router).send(Request("GET", URL))
    assert (response.status, response.content) == (503, b"busy")


@pytest.mark.parametrize(
    ("raised", "expected", "maybe_sent"),
    [
        (httpx.ConnectError, ConnectionFailed, False),
        (httpx.ConnectTimeout, RequestTimeout, False),
        (httpx.ReadTimeout, RequestTimeout, True),
        (httpx.WriteTimeout, RequestTimeout, True),
        (httpx.PoolTimeout, RequestTimeout, True),
        (httpx.RemoteProtocolError, ConnectionFailed, True),
        (httpx.ReadError, ConnectionFailed, True),
        (httpx.TooManyRedirects, TransportError, True),
    ],
)
async def test_httpx_errors_map_to_transport_errors(
    router: respx.MockRouter,
    raised: type[httpx.HTTPError],
    expected: type[TransportError],
    maybe_sent: bool,
) -> None:
    router.post(path="/_matrix/client/v3/login").mock(side_effect=raised)
    request = Request(
        "POST",
        f"{HOMESERVER}/_matrix/client/v3/login?access_token={SECRET}",
        {"Authorization": f"Bearer {SECRET}"},
        {"password": SECRET},
    )
    with pytest.raises(TransportError) as caught:
        await make_transport(router).send(request)
    error = caught.value
    assert type(error) is expected
    assert error.maybe_sent is maybe_sent
    assert isinstance(error.__cause__, raised)
    assert str(error) == f"POST {HOMESERVER}/_matrix/client/v3/login: {raised.__name__}"
    assert SECRET not in str(error)


async def test_injected_client_is_left_open(router: respx.MockRouter) -> None:
    router.get(path="/_matrix/client/v3/rooms/!r:localhost/state").respond(200, json=[])
    client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    transport = HttpxTransport(client)
    await transport.aclose()
    assert not client.is_closed
    assert (await transport.send(Request("GET", URL))).status == 200
    await client.aclose()


async def test_own_client_is_closed_on_aclose() -> None:
    transport = HttpxTransport()
    assert "owns_client=True" in repr(transport)
    await transport.aclose()
    # A closed httpx client refuses before touching the network (so no ConnectionFailed).
    with pytest.raises(RuntimeError, match="closed"):
        await transport.send(Request("GET", "http://localhost:9/never"))


def test_satisfies_transport_protocol() -> None:
    injected = make_transport(make_router(HOMESERVER))
    assert isinstance(injected, Transport)
    assert isinstance(HttpxTransport(), Transport)
    assert "owns_client=False" in repr(injected)

    class SendOnly:
        async def send(self, request: Request) -> Response:
            return Response(200)

    assert not isinstance(SendOnly(), Transport)


def test_request_and_response_reprs_hide_secrets() -> None:
    request = Request("POST", URL, {"Authorization": f"Bearer {SECRET}"}, {"password": SECRET})
    assert SECRET not in repr(request)
    assert repr(Response(200, {"Set-Cookie": SECRET}, SECRET.encode())) == "Response(200, 20 bytes)"


async def https_request_to(tls: ssl.SSLContext | None) -> TlsFailed:
    """An https:// request to a local server (plain http when `tls` is None): its error."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transport = HttpxTransport(timeout=5.0)
    try:
        with pytest.raises(TlsFailed) as failed:
            await transport.send(Request("GET", f"https://127.0.0.1:{server.server_port}/x"))
    finally:
        await transport.aclose()
        server.shutdown()
        server.server_close()
    return failed.value


async def test_https_to_a_plain_http_port_is_a_tls_failure_that_hints_at_the_scheme() -> None:
    failed = await https_request_to(None)

    assert "use http://" in str(failed) and failed.maybe_sent is False
    assert not is_retryable(failed, None, idempotent=True)


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a throwaway self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(  # noqa: S603
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",  # noqa: S607
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate here: {made.stderr[-200:]!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def test_an_untrusted_certificate_says_so_instead_of_blaming_the_scheme(
    self_signed: ssl.SSLContext,
) -> None:
    failed = await https_request_to(self_signed)

    assert "certificate is not trusted" in str(failed)
    assert "self-signed" in str(failed) and "http://" not in str(failed)
