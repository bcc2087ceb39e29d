"""Kept importable for bridges: `HttpxTransport` lives in `app.http.httpx_transport`.

See migration_notes.md ("Module paths after the house move").
"""

from app.http.httpx_transport import HttpxTransport

__all__ = ["HttpxTransport"]
