"""Shared pieces of the reliability suite: fault routes in front of the fakes, state checks.

`FrontDoor` is one respx route registered *before* the fakes' routes (respx tries routes in
insertion order). Its async side effect looks for a matching fault rule; a rule's effect may
raise an httpx exception (a transport fault), return a response (a canned answer), or call the
fake first and then lose or mangle its answer (the server acted, the client never heard).
When no rule matches it returns None, which respx treats as "not this route": the request
falls through to the stateful fakes.
"""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.lowlevel
import httpx
import pytest
import respx

from app.cli import main
from app.identity.naming import agent_localpart
from app.state.store import JOURNAL_FILE, MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE
from app.sync.history import HISTORICAL_KEY, spoken_text
from app.sync.rooms import AGENT_TAG
from app.testing.fake_http import fake_request_from_httpx, httpx_response_from_fake
from app.testing.fake_routing import RoutedFake
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver
from app.testing.letta import FakeLetta

from helpers import cli_env

MATRIX_PORT = 8008
LETTA_PORT = 8283

Effect = Callable[[httpx.Request], "httpx.Response | None"]


# Effects -------------------------------------------------------------------------------------


def refuse() -> Effect:
    def effect(request: httpx.Request) -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    return effect


def connect_timeout() -> Effect:
    def effect(request: httpx.Request) -> None:
        raise httpx.ConnectTimeout("timed out connecting", request=request)

    return effect


def read_timeout() -> Effect:
    def effect(request: httpx.Request) -> None:
        raise httpx.ReadTimeout("timed out reading", request=request)

    return effect


def cut_off() -> Effect:
    """The connection dies in the middle of the response body."""

    def effect(request: httpx.Request) -> None:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body", request=request
        )

    return effect


def respond(
    status: int,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Effect:
    """A canned response: JSON `body`, or exactly the bytes `raw` (HTML, truncated JSON...)."""

    def effect(request: httpx.Request) -> httpx.Response:
        if raw is not None:
            return httpx.Response(status, content=raw, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return effect


def after_server(fake: RoutedFake, then: Effect) -> Effect:
    """Let the fake act on the request, then answer with `then` instead of the fake's reply."""

    def effect(request: httpx.Request) -> httpx.Response | None:
        fake.handle(fake_request_from_httpx(request))
        return then(request)

    return effect


def served_by(fake: RoutedFake) -> Effect:
    def effect(request: httpx.Request) -> httpx.Response:
        return httpx_response_from_fake(fake.handle(fake_request_from_httpx(request)))

    return effect


def call_then_fall_through(action: Callable[[httpx.Request], None]) -> Effect:
    """Run `action` (say, expire a token) and let the fakes answer the request."""

    def effect(request: httpx.Request) -> None:
        action(request)
        return None

    return effect


HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


# The front door ------------------------------------------------------------------------------


@dataclass
class Rule:
    port: int
    method: str
    pattern: re.Pattern[str]
    effects: list[Effect]
    forever: bool
    hits: int = 0

    def matches(self, request: httpx.Request) -> bool:
        return (
            bool(self.effects)
            and request.url.port == self.port
            and self.method in ("*", request.method)
            and self.pattern.search(request.url.path) is not None
        )

    def next_effect(self) -> Effect:
        self.hits += 1
        return self.effects[0] if self.forever else self.effects.pop(0)


@dataclass
class FrontDoor:
    """Fault rules tried before the fakes. Create it on a router before `SyncHarness`."""

    router: respx.MockRouter
    interleave: bool = False
    rules: list[Rule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.router.route().mock(side_effect=self._dispatch)

    def add(
        self, port: int, method: str, path_regex: str, *effects: Effect, forever: bool = False
    ) -> Rule:
        rule = Rule(port, method, re.compile(path_regex), list(effects), forever)
        self.rules.append(rule)
        return rule

    def matrix(self, method: str, path_regex: str, *effects: Effect, forever: bool = False) -> Rule:
        return self.add(MATRIX_PORT, method, path_regex, *effects, forever=forever)

    def letta(self, method: str, path_regex: str, *effects: Effect, forever: bool = False) -> Rule:
        return self.add(LETTA_PORT, method, path_regex, *effects, forever=forever)

    async def _dispatch(self, request: httpx.Request) -> httpx.Response | None:
        if self.interleave:
            # Give other agents' requests a chance to run, as a real network would.
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
        for rule in self.rules:
            if rule.matches(request):
                return rule.next_effect()(request)
        return None


def harness_with_door(data_dir: Path, *, interleave: bool = False) -> tuple[SyncHarness, FrontDoor]:
    router = respx.MockRouter(using=None, assert_all_called=False)
    door = FrontDoor(router, interleave=interleave)
    return SyncHarness(data_dir, router=router), door


def run_cli(
    h: SyncHarness, capsys: pytest.CaptureFixture[str], *argv: str, **env: str
) -> tuple[int, str, list[str]]:
    """`letta-matrix-sync sync` (or `argv`) in-process on the harness's fakes and instant clock:
    exit code, stdout, and the lines the CLI itself wrote to stderr (never a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(
        list(argv) or ["sync"],
        env=cli_env(h, **env),
        transport=h.transport(),
        out=out,
        err=err,
        pacing=h.clock.pacing(),
    )
    assert "Traceback" not in capsys.readouterr().err + err.getvalue()
    return code, out.getvalue(), err.getvalue().splitlines()


# State on disk -------------------------------------------------------------------------------


def read_json_file(path: Path) -> Any:
    """The parsed file; fails the test when the file is not valid JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def mappings_on_disk(data_dir: Path) -> dict[str, dict[str, Any]]:
    data = read_json_file(data_dir / MAPPINGS_FILE)
    assert isinstance(data, dict)
    return data


def tokens_on_disk(data_dir: Path) -> dict[str, dict[str, Any]]:
    data = read_json_file(data_dir / TOKENS_FILE)
    assert isinstance(data, dict)
    return data


def space_on_disk(data_dir: Path) -> dict[str, Any]:
    data = read_json_file(data_dir / SPACE_FILE)
    assert isinstance(data, dict)
    return data


def state_files_valid(data_dir: Path) -> None:
    """Every state file parses; every journal line left behind parses too."""
    for name in (MAPPINGS_FILE, SPACE_FILE, TOKENS_FILE):
        path = data_dir / name
        if path.exists():
            assert isinstance(read_json_file(path), dict), name
    journal = data_dir / JOURNAL_FILE
    if journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            assert isinstance(json.loads(line), dict)


def file_bytes(data_dir: Path) -> dict[str, bytes]:
    return {
        name: (data_dir / name).read_bytes()
        for name in (MAPPINGS_FILE, SPACE_FILE)
        if (data_dir / name).exists()
    }


def assert_kept(before: dict[str, dict[str, Any]], data_dir: Path) -> None:
    """Every earlier mapping is still on disk with its user, password and room."""
    state_files_valid(data_dir)
    after = mappings_on_disk(data_dir)
    for agent_id, old in before.items():
        assert agent_id in after, f"mapping of {agent_id} lost"
        new = after[agent_id]
        for key in ("matrix_user_id", "matrix_password"):
            assert new[key] == old[key], f"{key} of {agent_id} changed"
        if old.get("room_id"):
            assert new["room_id"] == old["room_id"], f"room of {agent_id} changed"
        if old.get("created"):
            assert new["created"] is True


# What the homeserver holds -------------------------------------------------------------------


def tagged_rooms(hs: FakeHomeserver) -> dict[str, list[str]]:
    """agent id -> ids of the rooms on the server whose `ai.letta.agent` tag names it."""
    found: dict[str, list[str]] = defaultdict(list)
    for room_id in hs.room_ids():
        tag = hs.state(room_id, AGENT_TAG)
        if tag is not None and isinstance(tag.get("agent_id"), str):
            found[tag["agent_id"]].append(room_id)
    return dict(found)


def spaces(hs: FakeHomeserver) -> list[str]:
    return [
        room_id
        for room_id in hs.room_ids()
        if (hs.state(room_id, "m.room.create") or {}).get("type") == "m.space"
    ]


def imported_history(hs: FakeHomeserver, room_id: str) -> list[str]:
    """Texts of the history-import messages in a room's timeline, in order."""
    return [
        spoken_text(event.content)
        for event in hs.room(room_id).timeline
        if event.content.get(HISTORICAL_KEY) is True
    ]


def add_conversation(letta: FakeLetta, agent_id: str, label: str) -> list[str]:
    """Give an agent a short conversation; returns the texts its new room should show."""
    texts = [f"{label}: first question", f"{label}: first answer", f"{label}: second question"]
    for n, text in enumerate(texts):
        letta.add_message(agent_id, "user_message" if n % 2 == 0 else "assistant_message", text)
    return texts


def assert_converged(
    hs: FakeHomeserver,
    data_dir: Path,
    agent_ids: Iterable[str],
    *,
    members: Iterable[str] = (),
    history: Mapping[str, list[str]] | None = None,
) -> None:
    """One user and one tagged room per agent, each room mapped, joined and in the space.

    With `history`, each agent's room shows exactly those imported messages, each once.
    """
    state_files_valid(data_dir)
    wanted = list(agent_ids)
    mappings = mappings_on_disk(data_dir)
    space_id = space_on_disk(data_dir)["space_id"]
    rooms = tagged_rooms(hs)
    assert set(rooms) <= set(mappings), "a tagged room names an unknown agent"
    for agent_id in wanted:
        m = mappings[agent_id]
        user = m["matrix_user_id"]
        assert user == f"@{agent_localpart(agent_id)}:{hs.server_name}"
        assert hs.has_user(user), f"no Matrix user for {agent_id}"
        assert hs.password(user) == m["matrix_password"], f"password of {agent_id} lost"
        assert rooms.get(agent_id) == [m["room_id"]], f"rooms of {agent_id}: {rooms.get(agent_id)}"
        room = m["room_id"]
        joined = {u for u, s in hs.members(room).items() if s == "join"}
        assert {user, *members} <= joined, f"members of the room of {agent_id}: {joined}"
        assert (hs.state(space_id, "m.space.child", room) or {}).get("via"), "not in the space"
        assert hs.state(room, "m.space.parent", space_id) is not None
        if history is not None:
            shown = imported_history(hs, room)
            assert shown == history.get(agent_id, []), f"history of {agent_id}: {shown}"


# A seeded world ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """Two agents synced cleanly, then a third added: the next sync provisions only it."""

    h: SyncHarness
    door: FrontDoor
    old: list[str]
    new: str
    before: dict[str, dict[str, Any]]
    sleeps_before: int
    # The history each agent's room should show once the sync converged.
    history: dict[str, list[str]]

    @property
    def all_agents(self) -> list[str]:
        return [*self.old, self.new]

    def sleeps(self) -> list[float]:
        """Waits requested since the seed sync (the clock is instant)."""
        return self.h.clock.sleeps[self.sleeps_before :]

    async def converge(self) -> None:
        """A clean sync after the fault: every agent in order, nothing doubled."""
        report = await self.h.sync()
        assert report.ok, (report.failures, report.letta_error)
        assert_converged(
            self.h.homeserver,
            self.h.data_dir,
            self.all_agents,
            members=(self.h.admin_id, self.h.bot_id),
            history=self.history,
        )


async def seed(h: SyncHarness, door: FrontDoor) -> Seeded:
    history: dict[str, list[str]] = {}
    old = []
    for name in ("Ada", "Brook"):
        agent_id = h.letta.add_agent(name)
        history[agent_id] = add_conversation(h.letta, agent_id, name)
        old.append(agent_id)
    report = await h.sync()
    assert report.ok, report.failures
    new = h.letta.add_agent("Carol")
    history[new] = add_conversation(h.letta, new, "Carol")
    sleeps = len(h.clock.sleeps)
    return Seeded(h, door, old, new, mappings_on_disk(h.data_dir), sleeps, history)
