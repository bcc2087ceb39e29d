"""Path segments for URLs built from untrusted ids: the one place that percent-encodes them."""

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
