"""Setup failures re-raised with the setting to check, so the message tells what to fix.

Used by the sync and by `plan`: the same failure reads the same way in both.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from app.errors import (
    ConfigError,
    LettaError,
    MalformedResponse,
    MatrixError,
    MatrixServerError,
    StateWriteError,
    TransportError,
)
from app.http.calls import is_redirect
from app.http.paths import redact_url
from app.state.opening import is_database


@contextmanager
def naming_the_data_dir(location: str | Path) -> Iterator[None]:
    """`location`: a database URL, or the data directory of the JSON files."""
    try:
        yield
    except StateWriteError as exc:
        if is_database(location):
            raise  # the database's own message says what failed, with MATRIX_STORE_URL
        raise StateWriteError(
            f"the sync's state could not be saved in MATRIX_DATA_DIR={location}: {exc}. The "
            f"state files there are whole but not up to date: {_fix_for(exc)}, and run the sync "
            "again; it finds what this one did on the homeserver"
        ) from exc


def _fix_for(error: BaseException) -> str:
    """What to do about the operating system's reason, found down the chain of causes."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    code = cause.errno if isinstance(cause, OSError) else None
    if code in (errno.EACCES, errno.EPERM):
        return "give the service's user write access to the directory and its files"
    if code == errno.EROFS:
        return "the file system is read-only: choose a writable MATRIX_DATA_DIR"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "free some space (or raise the quota)"
    return "fix the cause"


@contextmanager
def naming_the_homeserver(homeserver_url: str) -> Iterator[None]:
    """Steps that only talk to the homeserver: say which setting to check."""
    url = redact_url(homeserver_url)
    try:
        yield
    except TransportError as exc:
        message = f"cannot reach the homeserver (MATRIX_HOMESERVER_URL={url}): {exc}"
        raise type(exc)(message, maybe_sent=exc.maybe_sent) from exc
    except MatrixServerError as exc:
        raise MatrixServerError(
            exc.status,
            exc.errcode,
            exc.error,
            body=exc.body,
            message=f"the homeserver at MATRIX_HOMESERVER_URL={url} failed during setup "
            f"with HTTP {exc.status} ({exc.error}): the server or a proxy in front of it is "
            "in trouble, not the configuration; try again later",
        ) from exc
    except MatrixError as exc:
        if is_redirect(exc.status):
            raise ConfigError(
                f"MATRIX_HOMESERVER_URL={url} answered HTTP {exc.status}, a redirect, which the "
                "library does not follow: set the URL the homeserver answers at itself"
            ) from exc
        # The paths used in setup exist on every homeserver: "unrecognized" (Synapse's
        # M_UNRECOGNIZED) or a bare 404 page means the URL points at something else.
        if exc.errcode not in (None, "M_UNRECOGNIZED") or exc.status not in (404, 405):
            raise
        raise not_a_homeserver(homeserver_url, exc.status) from exc


def not_a_homeserver(homeserver_url: str, status: int) -> ConfigError:
    return ConfigError(
        f"MATRIX_HOMESERVER_URL={redact_url(homeserver_url)} does not answer like a Matrix "
        f"homeserver (HTTP {status}){_path_hint(homeserver_url)}"
    )


def _path_hint(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    if not path:
        return ""
    return f": leave the path {path!r} out, the library adds /_matrix/... itself"


def raise_if_letta_misconfigured(exc: MalformedResponse | LettaError, url: str) -> None:
    """A wrong URL or token is a setup error (exit 2), not a Letta outage to report."""
    if isinstance(exc, LettaError) and exc.status in (401, 403):
        raise ConfigError(f"Letta refused the credentials (check LETTA_TOKEN): {exc}") from exc
    if isinstance(exc, LettaError) and is_redirect(exc.status):
        raise ConfigError(
            f"LETTA_API_URL={redact_url(url)} answered HTTP {exc.status} ({exc.detail}): set "
            "the address the Letta server answers at itself (https:// behind a TLS proxy?)"
        ) from exc
    if isinstance(exc, MalformedResponse) or exc.status in (404, 405):
        hint = " (leave /v1 out of LETTA_API_URL)" if url.rstrip("/").endswith("/v1") else ""
        raise ConfigError(
            f"LETTA_API_URL={redact_url(url)} does not answer like a Letta server "
            f"(HTTP {exc.status}){hint}"
        ) from exc
