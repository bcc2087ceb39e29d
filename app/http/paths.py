"""URL pieces: path segments built from untrusted ids (the one place that percent-encodes
them), and URLs made safe to show."""

from __future__ import annotations

from urllib.parse import quote


def segment(value: str) -> str:
    """One path segment, percent-encoded (`/`, `?`, `#`, `%`, `:` and non-ASCII included).

    A segment made only of dots is encoded too: URL normalisation would otherwise treat `.`
    and `..` as "this" and "parent" segments and silently call a different endpoint.
    """
    if value and set(value) == {"."}:
        return "%2E" * len(value)
    return quote(value, safe="")


def redact_url(url: str) -> str:
    """The URL without user info or query string, which may carry secrets, for messages."""
    base = url.split("?", 1)[0].split("#", 1)[0]
    scheme, separator, rest = base.partition("://")
    if not separator:
        return base
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{path}"
