"""The fake Matrix homeserver: one stateful in-memory server, split by endpoint family.

- ``server``: :class:`FakeHomeserver`, the route table, authentication and the read-back and
  set-up helpers a test calls directly;
- ``model``: the records it keeps (users, sessions, rooms, state and timeline events);
- ``readback``: the frozen values a test reads back (:class:`Message`, :class:`StateEntry`);
- ``account``, ``rooms``, ``space``, ``state``: the endpoint handlers, one module per family.
"""

from app.testing.homeserver.readback import Message, StateEntry
from app.testing.homeserver.server import FakeHomeserver

__all__ = ["FakeHomeserver", "Message", "StateEntry"]
