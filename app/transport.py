"""Kept importable for bridges: the transport seam lives in `app.http.transport`.

See migration_notes.md ("Module paths after the house move").
"""

from app.http.transport import Request, Response, Transport

__all__ = ["Request", "Response", "Transport"]
