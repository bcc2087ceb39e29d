"""A test takes one endpoint of a fake over with `sync_harness.override`, and gives it back."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.errors import TransportError
from app.matrix import MatrixClient
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
# A kind as the docs write it: fail_next("createRoom", ...), override("send", ...),
# requests_by_kind["send"].
KIND_IN_DOCS = re.compile(r"(?:fail_next\(|override\(|requests_by_kind\[)\s*\"(\w+)\"")
BOOM = {"errcode": "M_UNKNOWN", "error": "boom"}


def agent_with_history(fake_letta: FakeLetta) -> str:
    agent_id = fake_letta.add_agent("Historian")
    fake_letta.add_message(agent_id, "user_message", "hello")
    return agent_id


def client_of(sync_harness: SyncHarness) -> MatrixClient:
    """An anonymous client on the harness's router; retries wait on the fake clock."""
    url = sync_harness.homeserver.base_url
    return MatrixClient.connect(sync_harness.transport(), url, pacing=sync_harness.clock.pacing())


async def room_of(sync_harness: SyncHarness, agent_id: str) -> str:
    async with sync_harness.service() as service:
        mapping = service.mapping(agent_id)
    assert mapping is not None and mapping.room_id is not None
    return mapping.room_id


async def test_an_overridden_endpoint_answers_for_the_fake_until_given_back(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver, fake_letta: FakeLetta
) -> None:
    agent_id = agent_with_history(fake_letta)
    route = sync_harness.override("send", httpx.Response(500, json=BOOM))

    failed = await sync_harness.sync()

    room_id = await room_of(sync_harness, agent_id)
    assert [(f.agent_id, f.step) for f in failed.failures] == [(agent_id, "history")]
    assert fake_homeserver.messages(room_id) == []
    assert route.call_count == fake_homeserver.requests_by_kind["send"] == 1

    sync_harness.override("send", None)
    repaired = await sync_harness.sync()

    assert repaired.ok and [m.text for m in fake_homeserver.messages(room_id)] == ["hello"]


async def test_a_function_override_picks_the_requests_it_answers(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver
) -> None:
    alice = fake_homeserver.register_user("alice", "pw")
    room_id = fake_homeserver.create_room(alice)
    client = client_of(sync_harness)
    as_alice = client.as_user(alice, fake_homeserver.user_token(alice))

    def refuse_secrets(request: httpx.Request) -> httpx.Response | None:
        if b"secret" in request.content:
            return httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "no"})
        return None  # the fake answers

    sync_harness.override("send", refuse_secrets)
    await as_alice.send_event(room_id, {"msgtype": "m.text", "body": "public"})
    with pytest.raises(Exception, match="M_FORBIDDEN"):
        await as_alice.send_event(room_id, {"msgtype": "m.text", "body": "secret"})

    assert [m.body for m in fake_homeserver.messages(room_id)] == ["public"]
    assert fake_homeserver.requests_by_kind["send"] == 2


async def test_an_exception_override_is_raised_to_the_client(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver
) -> None:
    sync_harness.override("register_available", httpx.ConnectError("homeserver is down"))
    client = client_of(sync_harness)

    with pytest.raises(TransportError):
        await client.username_available("alice")
    assert fake_homeserver.requests_by_kind["register_available"] == 0  # nothing answered


async def test_a_letta_endpoint_can_be_overridden_too(
    sync_harness: SyncHarness, fake_letta: FakeLetta
) -> None:
    fake_letta.add_agent("Meridian")
    sync_harness.override("list_agents", httpx.Response(503, json={"detail": "down"}))

    report = await sync_harness.sync()

    assert report.letta_error is not None and "503" in report.letta_error
    assert fake_letta.requests_by_kind["list_agents"] >= 1


async def test_an_override_goes_before_queued_faults(
    sync_harness: SyncHarness, fake_homeserver: FakeHomeserver
) -> None:
    fake_homeserver.register_user("alice", "pw")
    fake_homeserver.fail_next("register_available", 403, {"errcode": "M_FORBIDDEN", "error": "x"})
    sync_harness.override("register_available", httpx.Response(200, json={"available": True}))
    client = client_of(sync_harness)

    assert await client.username_available("alice") is True  # the override, not the fake
    assert fake_homeserver.pending_faults("register_available") == 1
    sync_harness.override("register_available", None)
    with pytest.raises(Exception, match="M_FORBIDDEN"):
        await client.username_available("alice")
    assert await client.username_available("alice") is False  # the fake again


def test_an_unknown_kind_is_refused_with_the_known_ones(sync_harness: SyncHarness) -> None:
    with pytest.raises(ValueError, match=r"unknown endpoint kind 'matrix\.send'.*createRoom"):
        sync_harness.override("matrix.send", httpx.Response(500))
    with pytest.raises(ValueError, match="unknown endpoint kind 'nope'"):
        sync_harness.homeserver.override("nope", httpx.Response(500))


def test_one_name_per_endpoint_in_kinds_routes_and_docs(sync_harness: SyncHarness) -> None:
    kinds = {*sync_harness.homeserver.kinds, *sync_harness.letta.kinds}
    routes = {route.name for route in sync_harness.router.routes}
    documented = set()
    for doc in ("README.md", "migration_notes.md", "docs/kit.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        documented |= set(KIND_IN_DOCS.findall(text))

    assert routes == kinds and len(kinds) == 35
    assert "createRoom" in documented and "send" in documented
    assert documented <= kinds, documented - kinds
