"""The test kit: what a bridge's own tests need to exercise code built on this library.

Install it with ``pip install 'letta-matrix-sync[testing]'`` (pytest and respx). pytest then
loads :mod:`app.testing.plugin` through the package's ``pytest11`` entry point, with no
``conftest.py`` and no ``pytest_plugins`` line, and a test simply asks for its fixtures::

    import pytest

    pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]  # asyncio and trio

    async def test_agent_room(sync_harness, fake_homeserver, fake_letta):
        agent_id = fake_letta.add_agent("Meridian")
        report = await sync_harness.sync()
        async with sync_harness.service() as service:
            room_id = service.mapping(agent_id).room_id
        assert report.ok and fake_homeserver.members(room_id)[sync_harness.admin_id] == "join"

What is where:

- :mod:`app.testing.homeserver` - :class:`FakeHomeserver`, a stateful in-memory Matrix
  homeserver that answers like Synapse on the endpoints the library uses; read back what it
  holds with ``messages``, ``members``, ``state``, ``state_events`` and ``devices``;
- :mod:`app.testing.letta` - :class:`FakeLetta`, agents and their messages under ``/v1``, and
  :class:`LettaHTTPServer` to serve it on a real 127.0.0.1 port;
- :mod:`app.testing.harness` - :class:`SyncHarness`: both fakes on one respx router, a data
  directory, a fake clock, ``sync()``, and ``override(kind, answer)`` to take one endpoint over;
- :mod:`app.testing.plugin` - the fixtures ``sync_harness``, ``fake_homeserver``,
  ``fake_letta``, ``fake_router`` and ``synapse``, and the ``both_backends`` marker;
- :mod:`app.testing.synapse` - :class:`SynapseServer`, a throwaway real Synapse on 127.0.0.1
  (needs the ``[contract]`` extra);
- :mod:`app.testing.fake_http` and :mod:`app.testing.fake_routing` - the request and response
  values, endpoint table, fault queue and respx mounting the two fakes share;
- :mod:`app.testing.inprocess` - a transport that serves the fakes with no HTTP library at all
  (``letta-matrix-sync demo`` runs on it); :mod:`app.testing.clock` - :class:`FakeClock`.

Nothing here is imported by this package itself: importing ``app.testing`` costs nothing, and
only the harness and the plugin's fixtures need respx. The README's "Testing a bridge" section
documents the kit with samples that its tests run as a bridge would.
"""
