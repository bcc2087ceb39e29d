"""Agent ids and names from Letta are untrusted: localparts, URLs and files must stay sound.

Property tests (hypothesis) cover localpart generation, path encoding of every request builder
and state-file round trips; end-to-end syncs check that hostile agents are provisioned on the
fake homeserver without a request ever leaving the endpoints the fakes know.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reliability_support import (
    FrontDoor,
    assert_converged,
    harness_with_door,
    mappings_on_disk,
)

from app.errors import ApiError
from app.http import ApiCall, JsonApi
from app.http.transport import Request, Response
from app.identity.naming import MAX_LOCALPART, agent_localpart
from app.letta import LettaClient
from app.matrix import api
from app.state import AgentMapping, MappingStore, SpaceConfig
from app.sync.rooms import MAX_NAME_LENGTH
from app.testing.harness import SyncHarness
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio

BASE = "http://localhost:8008"
LOCALPART = re.compile(r"[a-z0-9._=\-/]+")
FRAGMENTS = [
    "/", "..", ".", "?", "#", "%", "%2F", "%00", "&", "=", "+", " ", "\n", "\r\n", "\t", '"',
    "'", "\\", "\u202e", "\u200f", "\u200b", "é", "日本", "😀", "agent-", "_", "-", ":", "@",
    "!", "$", "A", "z", "0",
]  # fmt: skip
hostile_text = st.one_of(
    st.text(min_size=1, max_size=40),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), min_size=1, max_size=10).map(
        "".join
    ),
)
agent_ids = hostile_text.filter(lambda text: bool(text.strip()))  # Letta parsing drops blanks
path_ids = hostile_text.filter(lambda text: text not in (".", ".."))
FAST = settings(max_examples=60, deadline=None)


def error_factory(response: Response) -> ApiError:
    return ApiError(response.status, "unexpected")


# Localparts ------------------------------------------------------------------------------------


@FAST
@given(agent_ids)
def test_localpart_uses_only_valid_characters_within_the_length_limit(agent_id: str) -> None:
    localpart = agent_localpart(agent_id)

    assert LOCALPART.fullmatch(localpart), localpart
    assert 0 < len(localpart) <= MAX_LOCALPART
    assert len(f"@{localpart}:matrix.example.org".encode()) <= 255
    assert agent_localpart(agent_id) == localpart  # stable across syncs


@FAST
@given(st.lists(agent_ids.filter(lambda text: "_" not in text), unique=True, max_size=25))
def test_distinct_ids_without_underscores_get_distinct_localparts(ids: list[str]) -> None:
    assert len({agent_localpart(agent_id) for agent_id in ids}) == len(ids)


@FAST
@given(st.lists(agent_ids, unique=True, max_size=25))
@example(["agent-1", "agent_1"])
@example(["A", "a-" + hashlib.sha256(b"A").hexdigest()[:12]])
def test_distinct_ids_get_distinct_localparts(ids: list[str]) -> None:
    assert len({agent_localpart(agent_id) for agent_id in ids}) == len(ids)


@pytest.mark.parametrize("agent_id", ["_agent", "-agent", "__init__"])
async def test_agent_id_with_a_leading_underscore_or_dash_gets_a_user(
    sync_harness: SyncHarness, agent_id: str
) -> None:
    sync_harness.letta.add_agent("Leading", agent_id=agent_id)

    report = await sync_harness.sync()

    assert report.ok, report.failures


# Paths -----------------------------------------------------------------------------------------


def decoded_segments(url: str) -> list[str]:
    """The path of `url` as the server sees it: httpx's parsing, then each segment decoded."""
    raw = httpx.URL(url).raw_path.split(b"?", 1)[0].decode("ascii")
    return [unquote(part) for part in raw.split("/")[1:]]


V3 = ["_matrix", "client", "v3"]
BUILDERS: dict[str, Callable[[str, str], tuple[ApiCall, list[str]]]] = {
    "get_state_event": lambda a, b: (
        api.get_state_event(a, b, a),
        [*V3, "rooms", a, "state", b, a],
    ),
    "put_state_event": lambda a, b: (
        api.put_state_event(a, b, {}, b),
        [*V3, "rooms", a, "state", b, b],
    ),
    "get_state": lambda a, b: (api.get_state(a), [*V3, "rooms", a, "state"]),
    "join": lambda a, b: (api.join(a), [*V3, "rooms", a, "join"]),
    "invite": lambda a, b: (api.invite(a, b), [*V3, "rooms", a, "invite"]),
    "leave": lambda a, b: (api.leave(a), [*V3, "rooms", a, "leave"]),
    "joined_members": lambda a, b: (api.joined_members(a), [*V3, "rooms", a, "joined_members"]),
    "set_displayname": lambda a, b: (
        api.set_displayname(a, b),
        [*V3, "profile", a, "displayname"],
    ),
    "get_displayname": lambda a, b: (api.get_displayname(a), [*V3, "profile", a, "displayname"]),
    "send_event": lambda a, b: (
        api.send_event(a, b, a + b, {}),
        [*V3, "rooms", a, "send", b, a + b],
    ),
    "space_hierarchy": lambda a, b: (
        api.space_hierarchy(a, from_token=b),
        ["_matrix", "client", "v1", "rooms", a, "hierarchy"],
    ),
}


@pytest.mark.parametrize("builder", list(BUILDERS))
@FAST
@given(first=path_ids, second=path_ids)
def test_matrix_builders_keep_the_path_structure_for_any_id(
    builder: str, first: str, second: str
) -> None:
    call, expected = BUILDERS[builder](first, second)
    url = JsonApi(RecordingTransport(), BASE, error_factory).url_for(call)

    assert url.startswith(BASE + "/")
    assert decoded_segments(url) == expected
    if builder == "space_hierarchy":
        assert httpx.URL(url).params["from"] == second


class RecordingTransport:
    """A Transport that records every request and answers with one fixed body."""

    def __init__(self, body: bytes = b"[]") -> None:
        self.body = body
        self.urls: list[str] = []

    async def send(self, request: Request) -> Response:
        self.urls.append(request.url)
        return Response(200, {"content-type": "application/json"}, self.body)

    async def aclose(self) -> None:
        return None


def letta_urls(agent_id: str) -> list[str]:
    transport = RecordingTransport(b'{"id": "x", "name": "y"}')
    letta = LettaClient.connect(transport, "http://localhost:8283")

    async def calls() -> None:
        await letta.get_agent(agent_id)
        transport.body = b"[]"
        await letta.message_page(agent_id, 5)

    anyio.run(calls)
    return transport.urls


@FAST
@given(path_ids)
def test_letta_paths_keep_their_structure_for_any_agent_id(agent_id: str) -> None:
    agent_url, messages_url = letta_urls(agent_id)

    assert decoded_segments(agent_url) == ["v1", "agents", agent_id]
    assert decoded_segments(messages_url) == ["v1", "agents", agent_id, "messages"]
    assert httpx.URL(messages_url).params["limit"] == "5"


@pytest.mark.parametrize(
    ("where", "value"),
    [("letta", ".."), ("letta", "."), ("matrix_state_key", ".."), ("matrix_room_id", ".")],
)
def test_dot_segments_do_not_change_the_path(where: str, value: str) -> None:
    if where == "letta":
        assert decoded_segments(letta_urls(value)[1]) == ["v1", "agents", value, "messages"]
        return
    call = api.get_state_event("!room", "m.room.name", value)
    expected = [*V3, "rooms", "!room", "state", "m.room.name", value]
    if where == "matrix_room_id":
        call, expected = api.joined_members(value), [*V3, "rooms", value, "joined_members"]
    url = JsonApi(RecordingTransport(), BASE, error_factory).url_for(call)
    assert decoded_segments(url) == expected


# State files -----------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
mapping_records = st.builds(
    AgentMapping,
    agent_id=agent_ids,
    agent_name=st.one_of(hostile_text, st.just("N" * 10_000)),
    matrix_user_id=st.text(max_size=30),
    matrix_password=st.text(max_size=50),
    created=st.booleans(),
    room_id=st.one_of(st.none(), agent_ids),  # "" means "no room" and loads as None
    room_created=st.booleans(),
    invitation_status=st.dictionaries(
        hostile_text, st.sampled_from(["invited", "joined", "failed"]), max_size=3
    ),
    extra=st.dictionaries(
        hostile_text.filter(lambda key: key not in AgentMapping.__dataclass_fields__),
        json_scalars,
        max_size=3,
    ),
)


def as_files(store: MappingStore) -> dict[str, dict[str, Any]]:
    return {agent_id: m.to_json() for agent_id, m in store.mappings.items()}


@FAST
@given(
    st.lists(mapping_records, max_size=6),
    agent_ids,  # an empty space name loads as the default name
    st.dictionaries(hostile_text, json_scalars, max_size=3),
)
def test_state_files_round_trip_hostile_values(
    records: list[AgentMapping], space_name: str, space_extra: dict[str, Any]
) -> None:
    space_extra = {
        k: v for k, v in space_extra.items() if k not in ("space_id", "created_at", "name")
    }
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory) / "data"
        store = MappingStore.open(data_dir, durable=False)
        for record in records:
            store.save_mapping(record)
        store.save_space(SpaceConfig("!space", 1.5, space_name, space_extra))
        expected = as_files(store)

        from_journal = MappingStore.read(data_dir)
        store.close()
        from_files = MappingStore.read(data_dir)

        assert as_files(from_journal) == expected
        assert as_files(from_files) == expected
        assert (
            from_files.space.to_json()
            == SpaceConfig("!space", 1.5, space_name, space_extra).to_json()
        )


# End to end --------------------------------------------------------------------------------------

HOSTILE_AGENTS = [
    ("agent/../../_matrix/client/v3/admin", "Slash/../name"),
    ("agent?limit=1#fragment", "Quote \" ' ` name"),
    ("agent%2F%25%00", "New\nline\r\nname\ttab"),
    ("agént-ü-日本", "\u202eRTL override\u202c \u200f mark"),
    ("agent-😀", "Emoji 😀🎉 name"),
    ("agent-5e7c2a4b-3f1d-4c8e-9b6a-0d2e4f6a8c1e", "X" * 10_000),
    ("AGENT-Upper-Case", "<script>alert(1)</script>"),
    ("a" * 300, "{name} {agent_id} %s"),
]


def served_messages(letta: FakeLetta, bad: list[str]) -> Callable[[httpx.Request], httpx.Response]:
    """Letta's message listing, answering only a structurally correct raw path."""

    def effect(request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        parts = raw.split("/")
        agent_id = unquote(parts[3]) if len(parts) == 5 else ""
        known = {agent.id for agent in letta.agents()}
        if parts[:3] != ["", "v1", "agents"] or parts[-1] != "messages" or agent_id not in known:
            bad.append(raw)
            return httpx.Response(404, json={"detail": "Not Found"})
        agent = letta.agent(agent_id)
        return httpx.Response(200, json=agent.records(agent.rows))

    return effect


def hostile_world(tmp_path: Path, agents: list[tuple[str, str]]) -> tuple[SyncHarness, list[str]]:
    """A harness whose router records anything the fakes do not recognise."""
    h, door = harness_with_door(tmp_path / "data")
    unrecognized: list[str] = []
    door.letta(
        "GET", r"^/v1/agents/.+/messages/?$", served_messages(h.letta, unrecognized), forever=True
    )

    def record(request: httpx.Request) -> httpx.Response:
        unrecognized.append(f"{request.method} {request.url.raw_path.decode('ascii')}")
        return httpx.Response(404, json={"errcode": "M_UNRECOGNIZED", "error": "Unrecognized"})

    # Added after the fakes' routes, so it sees only what they do not recognise. (A distinct
    # pattern: respx replaces a route whose pattern equals an earlier one, like the door's.)
    h.router.route(url__regex=r"^http").mock(side_effect=record)
    for agent_id, name in agents:
        h.letta.add_agent(name, agent_id=agent_id)
        h.letta.add_message(agent_id, "user_message", f"hello {name[:20]}")
    return h, unrecognized


async def test_hostile_agents_are_provisioned_without_leaving_known_endpoints(
    tmp_path: Path,
) -> None:
    h, unrecognized = hostile_world(tmp_path, HOSTILE_AGENTS)
    ids = [agent_id for agent_id, _ in HOSTILE_AGENTS]

    report = await h.sync()

    assert report.ok, report.failures
    assert report.agents_seen == len(ids)
    assert report.history_imported == dict.fromkeys(ids, 1)
    assert unrecognized == []
    assert_converged(h.homeserver, h.data_dir, ids, members=(h.admin_id, h.bot_id))
    mappings = mappings_on_disk(h.data_dir)
    for agent_id, name in HOSTILE_AGENTS:
        m = mappings[agent_id]
        assert m["agent_name"] == name  # the file keeps the untrusted name exactly
        room_name = (h.homeserver.state(m["room_id"], "m.room.name") or {})["name"]
        assert len(room_name) <= MAX_NAME_LENGTH and name.startswith(room_name.rstrip("…"))
        assert h.homeserver.displayname(m["matrix_user_id"]) == room_name
    assert (await h.sync()).ok and unrecognized == []


async def test_dot_dot_agent_id_stays_within_its_own_endpoints(tmp_path: Path) -> None:
    h, unrecognized = hostile_world(tmp_path, [("..", "Dots"), ("agent-plain", "Plain")])

    report = await h.sync()

    assert unrecognized == []
    assert report.ok, report.failures


async def test_name_with_a_lone_surrogate_is_cleaned_not_fatal(
    door_harness: tuple[SyncHarness, FrontDoor],
) -> None:
    """A lone surrogate is valid JSON but not UTF-8: the name is cleaned, the sync goes on."""
    h, _ = door_harness
    good = h.letta.add_agent("Good")
    broken = h.letta.add_agent("Broken \ud800 name")

    report = await h.sync()

    assert report.ok, report.failures
    on_disk = mappings_on_disk(h.data_dir)
    assert on_disk[good]["room_created"] is True
    assert on_disk[broken]["agent_name"] == "Broken ? name"
    assert h.homeserver.displayname(on_disk[broken]["matrix_user_id"]) == "Broken ? name"
