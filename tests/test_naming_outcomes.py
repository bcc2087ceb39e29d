"""The names a sync gives things: user ids, server names with a port, room-name templates."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest

from app.identity.naming import MAX_LOCALPART, agent_localpart, new_password
from app.matrix.ids import server_name_of
from app.testing.harness import SyncHarness
from app.testing.homeserver import FakeHomeserver

pytestmark = pytest.mark.anyio


def mappings(h: SyncHarness) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(
        (h.data_dir / "agent_user_mappings.json").read_text()
    )
    return data


async def test_a_server_name_with_a_port_is_kept_whole(tmp_path: Path) -> None:
    h = SyncHarness(tmp_path / "data", homeserver=FakeHomeserver("example.org:8448", seed=3))
    agent_id = h.letta.add_agent("Ported")

    report = await h.sync(username="@letta:example.org:8448")

    assert report.ok, report.failures
    mapping = mappings(h)[agent_id]
    assert mapping["matrix_user_id"] == f"@{agent_localpart(agent_id)}:example.org:8448"
    room_id, space_id = str(mapping["room_id"]), report.space_id
    assert space_id is not None
    assert h.homeserver.state(room_id, "m.space.parent", space_id)["via"] == ["example.org:8448"]
    assert h.homeserver.state(space_id, "m.space.child", room_id)["via"] == ["example.org:8448"]
    assert h.homeserver.members(room_id)["@letta:example.org:8448"] == "join"


async def test_a_room_name_template_may_name_the_agent_id(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Templated")

    report = await h.sync(room_name_template="{name} ({agent_id})")

    assert report.ok, report.failures
    room_id = str(mappings(h)[agent_id]["room_id"])
    assert h.homeserver.state(room_id, "m.room.name") == {"name": f"Templated ({agent_id})"}


def test_an_agent_id_of_the_longest_readable_length_stays_readable() -> None:
    longest = "a" * MAX_LOCALPART

    assert agent_localpart(longest) == longest
    assert "." in agent_localpart(longest + "a")  # one more: the hashed form


@pytest.mark.parametrize("agent_id", ["123", "1-2", "0"])
def test_an_agent_id_that_reads_as_a_number_never_becomes_a_numeric_localpart(
    agent_id: str,
) -> None:
    """Synapse reserves numeric localparts (and `1_2` is one to `int`) for guests."""
    localpart = agent_localpart(agent_id)

    with pytest.raises(ValueError):
        int(localpart)
    assert localpart.startswith(agent_id.replace("-", "_") + ".")


def test_an_agent_id_with_a_lone_surrogate_still_gets_a_distinct_localpart() -> None:
    # JSON may carry "\ud800": Python decodes it into a str no codec encodes strictly.
    first, second = agent_localpart("agent-\ud800"), agent_localpart("agent-\udfff")

    assert first != second
    assert set(first) <= set(string.ascii_lowercase + string.digits + "_.")


def test_a_new_password_is_random_url_safe_and_at_least_256_bits() -> None:
    passwords = {new_password() for _ in range(3)}

    assert len(passwords) == 3
    for password in passwords:
        assert len(password) >= 43  # 32 random bytes in base64
        assert set(password) <= set(string.ascii_letters + string.digits + "-_")


@pytest.mark.parametrize(
    ("user_id", "server"),
    [("@bot:example.org:8448", "example.org:8448"), ("!roomv12", ""), ("", "")],
)
def test_the_server_name_of_an_id(user_id: str, server: str) -> None:
    assert server_name_of(user_id) == server


def test_an_id_with_other_characters_keeps_a_readable_lowercase_prefix() -> None:
    localpart = agent_localpart("Agent.One")

    prefix, _, digest = localpart.partition(".")
    assert prefix == "agent_one"
    assert len(digest) == 16 and set(digest) <= set(string.hexdigits.lower())


def test_a_long_id_with_other_characters_fills_the_localpart_exactly() -> None:
    localpart = agent_localpart("Ä" + "x" * 300)

    assert len(localpart) == MAX_LOCALPART
    assert localpart.startswith("x" * 100)
