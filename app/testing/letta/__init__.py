"""The fake Letta server: agents and their messages under ``/v1``.

- ``server``: :class:`FakeLetta`, the in-memory server (served through respx or in-process);
- ``http_server``: :class:`LettaHTTPServer`, which serves it on a real 127.0.0.1 port for the
  contract tier, where the code under test talks real HTTP.
"""

from app.testing.letta.http_server import LettaHTTPServer
from app.testing.letta.server import FakeLetta

__all__ = ["FakeLetta", "LettaHTTPServer"]
