"""Every exception the library raises, in one tree.

    SyncError
    ├── ConfigError                  a setting is missing or invalid
    ├── StateFileError               a state file cannot be read or written
    │   └── StateWriteError          the sync's state could not be saved (a full disk, say)
    │       └── LeaseLost            a replica lost the lease: another leads, its writes win
    ├── SyncLocked                   another sync holds the data directory
    ├── TransportError               no HTTP response at all
    │   ├── ConnectionFailed         refused, reset, DNS
    │   │   └── TlsFailed            the TLS handshake failed (plain http behind https://?)
    │   └── RequestTimeout           connect, read, write or pool timeout
    └── ApiError                     an HTTP response we cannot use (.status, .body)
        ├── MalformedResponse        not JSON, or JSON of the wrong shape
        ├── LettaError               any Letta error status (.detail)
        └── MatrixError              any Matrix error status (.errcode, .error, .retry_after_ms)
            ├── MatrixForbidden      M_FORBIDDEN
            │   └── MatrixLoginRefused a token to renew, its password refused (raised, no errcode)
            ├── MatrixNotFound       M_NOT_FOUND
            ├── MatrixUserInUse      M_USER_IN_USE
            ├── MatrixExclusive      M_EXCLUSIVE: a name reserved by (or outside) an appservice
            ├── MatrixInvalidUsername M_INVALID_USERNAME
            ├── MatrixUnknownToken   M_UNKNOWN_TOKEN, M_MISSING_TOKEN
            ├── MatrixUserDeactivated M_USER_DEACTIVATED, or a refused login found deactivated
            ├── MatrixRateLimited    M_LIMIT_EXCEEDED or HTTP 429
            └── MatrixServerError    any other HTTP 5xx: the server, or a proxy before it, failed

Raised inside a sync and reported per agent (`SyncReport.failures`), never to the caller; the
next sync tries again (each is a `SyncError`, defined next to the step that raises it):

    RoomJoinFailed       the admin or the bot could not join the room (app.sync.agent_run)
    AgentDeactivated     the agent's account is deactivated; its room is kept (ditto)
    StatePowerMissing    no account held may write a state event the room needs
                         (app.sync.state_writes)
    WriteNotHeld         a write the homeserver accepted is not in its state when read back
                         (app.sync.confirm)

`MatrixError.from_response` picks the subclass from one errcode registry, so callers catch the
precise case they can handle (`except MatrixUserInUse`) instead of comparing strings.

What the command line makes of them (exit codes): `MatrixServerError` during setup is server
trouble, 1 (try again later); `ConfigError`, and any other error during setup, is 2 (the message
names the setting to fix); `SyncLocked` is 3; `StateWriteError` is 4.
Messages never include request headers or bodies: those carry access tokens and passwords.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

_BODY_PREVIEW = 200
_HTML_PREVIEW = 80
_HTML_START = re.compile(r"<(!doctype|html|head|body|title|h1|center)\b", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


class SyncError(Exception):
    """Base class of every error raised by this library."""


class ConfigError(SyncError):
    """A configuration value is missing or invalid; the message names it."""


class StateFileError(SyncError):
    """A state file exists but cannot be read, parsed or written."""


class StateWriteError(StateFileError):
    """A state file or the journal could not be written: what the sync did is not all saved.

    The files on disk are still whole (old or new, never torn), and the homeserver's side is
    found again by the next sync, once the cause (usually a full disk) is gone.
    """


class LeaseLost(StateWriteError):
    """This replica is no longer the leader: another one took the lease, and its writes win."""


class SyncLocked(SyncError):
    """Another sync process holds the lock on the data directory."""


class TransportError(SyncError):
    """The request got no HTTP response.

    `maybe_sent` is False only when the failure happened before any byte of the request left
    (a refused connection, a connect timeout): such requests are always safe to repeat.
    """

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class ConnectionFailed(TransportError):
    """The connection was refused, reset or could not be opened."""


class TlsFailed(ConnectionFailed):
    """The TLS handshake failed: a permanent mismatch (say, https:// to a plain-http port),
    so it is not retried."""


class RequestTimeout(TransportError):
    """Connecting, reading or writing took longer than the configured timeout."""


class ApiError(SyncError):
    """A server answered, but not with something the library can use."""

    def __init__(self, status: int, message: str, body: bytes | str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        # Seconds the server asked us to wait (Retry-After), when it asked.
        self.retry_after: float | None = None


class MalformedResponse(ApiError):
    """The body is not JSON, or its JSON lacks what the API promises."""

    def __init__(self, status: int, problem: str, body: bytes | str | None = None) -> None:
        super().__init__(status, f"malformed response (HTTP {status}): {problem}", body)
        self.problem = problem


class LettaError(ApiError):
    """Letta answered with an error status."""

    def __init__(self, status: int, detail: str, body: bytes | str | None = None) -> None:
        super().__init__(status, f"Letta HTTP {status}: {detail}", body)
        self.detail = detail


class MatrixError(ApiError):
    """The homeserver answered with an error status.

    `errcode` is None when the body was not a Matrix error (an HTML 502 page from a proxy, say).
    """

    registry: ClassVar[dict[str, type[MatrixError]]] = {}
    errcodes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        status: int,
        errcode: str | None,
        error: str,
        *,
        retry_after_ms: int | None = None,
        body: bytes | str | None = None,
        message: str | None = None,
    ) -> None:
        # `message` replaces the default text when the caller knows more (which setting, say).
        message = message or f"Matrix HTTP {status} {errcode or 'no errcode'}: {error}"
        super().__init__(status, message, body)
        self.errcode = errcode
        self.error = error
        self.retry_after_ms = retry_after_ms

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for code in cls.errcodes:
            MatrixError.registry[code] = cls

    @classmethod
    def from_response(
        cls, status: int, content: bytes, retry_after_header: float | None = None
    ) -> MatrixError:
        """Build the most specific error for an error response, JSON or not."""
        errcode, error, retry_after_ms = _parse_matrix_error(status, content)
        if retry_after_ms is None and retry_after_header is not None:
            retry_after_ms = int(retry_after_header * 1000)
        error_class = cls.registry.get(errcode or "", MatrixError)
        if error_class is MatrixError and status == 429:
            error_class = MatrixRateLimited
        if error_class is MatrixError and status >= 500:
            error_class = MatrixServerError
        return error_class(status, errcode, error, retry_after_ms=retry_after_ms, body=content)


class MatrixForbidden(MatrixError):
    errcodes: ClassVar[tuple[str, ...]] = ("M_FORBIDDEN",)


class MatrixLoginRefused(MatrixForbidden):
    """An account's password was refused when its token had to be renewed: no step can go
    on as that user, whatever the room or request it was about."""

    # Raised by the library, never chosen from an answer's errcode.
    errcodes: ClassVar[tuple[str, ...]] = ()


class MatrixNotFound(MatrixError):
    errcodes = ("M_NOT_FOUND",)


class MatrixUserInUse(MatrixError):
    errcodes = ("M_USER_IN_USE",)


class MatrixExclusive(MatrixError):
    """The name is another appservice's, or outside this appservice's namespace."""

    errcodes = ("M_EXCLUSIVE",)


class MatrixInvalidUsername(MatrixError):
    errcodes = ("M_INVALID_USERNAME",)


class MatrixUnknownToken(MatrixError):
    errcodes = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")


class MatrixUserDeactivated(MatrixError):
    """The account was deactivated: its tokens are gone and it can never log in again.

    Synapse 1.163 answers a password login to such an account 403 M_FORBIDDEN, like a wrong
    password (deactivation clears the hash); the library raises this class when it has found
    out otherwise (Synapse's admin API) that a refused account is deactivated.
    """

    errcodes = ("M_USER_DEACTIVATED",)


class MatrixRateLimited(MatrixError):
    errcodes = ("M_LIMIT_EXCEEDED",)


class MatrixServerError(MatrixError):
    """HTTP 5xx: the homeserver, or a proxy in front of it, failed; nothing to fix on our side.

    Chosen by status, so a 5xx with an errcode of its own (500 M_UNKNOWN) is one too.
    """


def describe_non_json(content: bytes) -> str:
    """A readable sentence for an error body that is not JSON (a proxy's HTML page, say)."""
    text = content.decode("utf-8", "replace").strip()
    if not text:
        return "empty error body"
    if _HTML_START.match(text):
        return f"non-JSON error body: an HTML page {_html_summary(text)!r}"
    return f"non-JSON error body: {text[:_BODY_PREVIEW]!r}"


def _html_summary(page: str) -> str:
    """The page's title, else its text without tags: what a person would read in a browser."""
    title = _HTML_TITLE.search(page)
    text = title.group(1) if title else _HTML_TAG.sub(" ", page)
    return " ".join(text.split())[:_HTML_PREVIEW] or "(no text)"


def _parse_matrix_error(status: int, content: bytes) -> tuple[str | None, str, int | None]:
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return None, describe_non_json(content), None
    errcode = data.get("errcode") if isinstance(data.get("errcode"), str) else None
    error = data.get("error") if isinstance(data.get("error"), str) else ""
    retry = data.get("retry_after_ms")
    retry_after_ms = retry if isinstance(retry, int) and not isinstance(retry, bool) else None
    return errcode, error or "(no error text)", retry_after_ms
