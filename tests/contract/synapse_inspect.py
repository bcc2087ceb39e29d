"""What a real Synapse holds, read with its admin API: users, rooms, tags, the space."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sync.history import HISTORICAL_KEY, spoken_text
from app.sync.rooms import AGENT_TAG
from app.testing.synapse import SynapseServer


@dataclass(frozen=True)
class Snapshot:
    users: frozenset[str]
    rooms: frozenset[str]


class Inspector:
    """A server admin of its own, registered through the shared secret (no rate limits)."""

    def __init__(self, synapse: SynapseServer) -> None:
        self.synapse = synapse
        _, self.token = synapse.register_admin(f"inspector{uuid.uuid4().hex[:8]}", "inspect-pw")

    def _get(self, path: str) -> Any:
        return self.synapse.request("GET", f"/_synapse/admin/{path}", token=self.token)

    def users(self) -> frozenset[str]:
        answer = self._get("v2/users?from=0&limit=10000&guests=false")
        return frozenset(str(user["name"]) for user in answer["users"])

    def rooms(self) -> frozenset[str]:
        answer = self._get("v1/rooms?limit=10000")
        return frozenset(str(room["room_id"]) for room in answer["rooms"])

    def snapshot(self) -> Snapshot:
        return Snapshot(self.users(), self.rooms())

    def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        for event in self.synapse.room_state(room_id, self.token):
            if event.get("type") == event_type and event.get("state_key") == state_key:
                return dict(event.get("content") or {})
        return None

    def imported_history(self, room_id: str) -> list[str]:
        """Bodies of the history-import messages in the room, oldest first."""
        return [
            spoken_text(e["content"])
            for e in self.synapse.room_messages(room_id, self.token)
            if e.get("type") == "m.room.message" and e.get("content", {}).get(HISTORICAL_KEY)
        ]

    def tagged(self, rooms: frozenset[str]) -> dict[str, list[str]]:
        """agent id -> the rooms among `rooms` whose agent tag names it."""
        found: dict[str, list[str]] = {}
        for room_id in sorted(rooms):
            tag = self.state(room_id, AGENT_TAG)
            if tag and isinstance(tag.get("agent_id"), str):
                found.setdefault(tag["agent_id"], []).append(room_id)
        return found


def assert_converged_on_synapse(
    inspector: Inspector,
    before: Snapshot,
    data_dir: Path,
    agent_ids: list[str],
    members: tuple[str, str],
    history: dict[str, list[str]] | None = None,
) -> None:
    """Since `before`: one user and one room per agent (plus bot, admin and the space), every
    room tagged, mapped, joined by the agent, the admin and the bot, and in the space; with
    `history`, each room shows exactly those imported messages, each once."""
    mappings = json.loads((data_dir / "agent_user_mappings.json").read_text())
    space_id = json.loads((data_dir / "letta_space_config.json").read_text())["space_id"]
    new_users = inspector.users() - before.users
    agent_users = {mappings[agent]["matrix_user_id"] for agent in agent_ids}
    assert new_users == agent_users | set(members), sorted(new_users ^ agent_users)
    new_rooms = inspector.rooms() - before.rooms
    assert len(new_rooms) == len(agent_ids) + 1, "one room per agent and one space"
    tagged = inspector.tagged(new_rooms)
    for agent in agent_ids:
        room = mappings[agent]["room_id"]
        assert tagged.get(agent) == [room], (agent, tagged.get(agent), room)
        joined = set(inspector.synapse.room_members(room, inspector.token))
        assert {mappings[agent]["matrix_user_id"], *members} <= joined, (agent, joined)
        child = inspector.state(space_id, "m.space.child", room)
        assert child and child.get("via"), f"room of {agent} not in the space"
        assert inspector.state(room, "m.space.parent", space_id) is not None
        if history is not None:
            shown = inspector.imported_history(room)
            assert shown == history[agent], (agent, shown)
