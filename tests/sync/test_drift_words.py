"""What `plan` and the logs say of a room that drifted, as words, from its state alone."""

from __future__ import annotations

from app.matrix.view import MEMBER, RoomState
from app.sync.drift import AGENT_TAG, ROOM_NAME, SPACE_PARENT, TOMBSTONE, room_drift

AGENT, ADMIN, BOT = "@agent:hs", "@admin:hs", "@bot:hs"


def room() -> RoomState:
    """An agent room as the sync leaves it."""
    return RoomState(
        {
            (ROOM_NAME, ""): {"name": "Agent"},
            (AGENT_TAG, ""): {"agent_id": "agent-1"},
            (SPACE_PARENT, "!space"): {"via": ["hs"]},
            (MEMBER, AGENT): {"membership": "join"},
            (MEMBER, ADMIN): {"membership": "join"},
            (MEMBER, BOT): {"membership": "join"},
        }
    )


def drift_of(state: RoomState) -> str:
    return room_drift(state, AGENT, [ADMIN, BOT], "Agent", "!space", "agent-1").describe()


def test_a_room_in_order_has_nothing_to_say() -> None:
    assert drift_of(room()) == ""


def test_each_drift_in_its_own_words_in_a_fixed_order() -> None:
    everything = RoomState(
        {
            (ROOM_NAME, ""): {"name": "Hijacked"},
            (TOMBSTONE, ""): {"replacement_room": "!new"},
            (MEMBER, ADMIN): {"membership": "leave"},
            (MEMBER, BOT): {"membership": "join"},
        }
    )

    assert drift_of(everything) == (
        "room upgraded to !new; agent user not in the room (never joined); "
        "@admin:hs not in the room; room renamed by hand; space link in the room removed; "
        "the room's agent tag removed"
    )
