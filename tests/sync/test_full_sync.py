"""Full sync from empty state against the stateful fakes: assert what the homeserver holds."""

from __future__ import annotations

import json
import os
import stat

import pytest

from app.testing.harness import SyncHarness

pytestmark = pytest.mark.anyio


async def test_full_sync_from_empty_state(sync_harness: SyncHarness) -> None:
    h = sync_harness
    ids = [h.letta.add_agent(f"Agent {n}") for n in range(3)]

    report = await h.sync()

    assert report.ok, report.failures
    assert sorted(report.users_created) == sorted(ids)
    hs = h.homeserver
    space_id = report.space_id
    assert space_id is not None
    assert hs.state(space_id, "m.room.create")["type"] == "m.space"
    mappings = json.loads((h.data_dir / "agent_user_mappings.json").read_text())
    for n, agent_id in enumerate(ids):
        m = mappings[agent_id]
        assert m["agent_name"] == f"Agent {n}"
        assert hs.displayname(m["matrix_user_id"]) == f"Agent {n}"
        room = m["room_id"]
        members = hs.members(room)
        assert members[m["matrix_user_id"]] == "join"
        assert members[h.admin_id] == "join"
        assert members[h.bot_id] == "join"
        assert hs.state(room, "m.room.name") == {"name": f"Agent {n}"}
        assert hs.state(room, "m.space.parent", space_id)["via"] == ["localhost"]
        assert hs.state(space_id, "m.space.child", room)["via"] == ["localhost"]
        assert m["invitation_status"] == {h.admin_id: "joined", h.bot_id: "joined"}
    space_file = json.loads((h.data_dir / "letta_space_config.json").read_text())
    assert space_file["space_id"] == space_id
    assert space_file["name"] == "Letta Agents"
    for name in ("agent_user_mappings.json", "letta_space_config.json", "access_tokens.json"):
        assert stat.S_IMODE(os.stat(h.data_dir / name).st_mode) == 0o600


async def test_second_sync_creates_nothing(sync_harness: SyncHarness) -> None:
    h = sync_harness
    for n in range(3):
        h.letta.add_agent(f"Agent {n}")
    first = await h.sync()
    rooms_before = set(h.homeserver.room_ids())
    devices_before = h.homeserver.devices_created

    second = await h.sync()

    assert second.ok
    assert second.users_created == second.rooms_created == second.repaired == []
    assert set(h.homeserver.room_ids()) == rooms_before
    assert h.homeserver.devices_created == devices_before
    assert second.space_id == first.space_id
