"""Two rules behind what a report may claim: a write counts only once the admin's view holds
it (rooms the view does not show cannot be checked), and a member is "back" to repair only if
the library had joined it before."""

from __future__ import annotations

from app.matrix.view import MEMBER, HomeserverView, RoomState
from app.state import AgentMapping
from app.sync.confirm import StateWrite, unheld
from app.sync.decide import members_back

NAME = "m.room.name"


def write(room_id: str, name: str) -> StateWrite:
    return StateWrite("agent-1", "Agent", "rename", room_id, NAME, "", {"name": name})


def test_only_the_writes_the_view_does_not_hold_are_unheld() -> None:
    view = HomeserverView(
        "http://hs",
        "@admin:hs",
        "s1",
        {
            "!held": RoomState({(NAME, ""): {"name": "New"}}),
            "!lost": RoomState({(NAME, ""): {"name": "Old"}}),
        },
    )
    writes = [write("!unseen", "New"), write("!held", "New"), write("!lost", "New")]

    assert unheld(view, writes) == [write("!lost", "New")]


def test_a_member_is_back_to_bring_only_if_the_library_had_joined_it() -> None:
    room = RoomState(
        {
            (MEMBER, "@admin:hs"): {"membership": "leave"},
            (MEMBER, "@bot:hs"): {"membership": "join"},
            (MEMBER, "@person:hs"): {"membership": "leave"},
        }
    )
    mapping = AgentMapping("agent-1", "Agent", "@agent:hs", "pw", True, "!r")
    mapping.invitation_status.update(
        {"@admin:hs": "joined", "@bot:hs": "joined", "@person:hs": "invited"}
    )

    back = members_back(room, mapping, ["@admin:hs", "@bot:hs", "@person:hs"])

    assert back == ["@admin:hs"]
