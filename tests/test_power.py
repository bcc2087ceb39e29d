"""Who may write a room's state, from its power levels and creation (pure functions)."""

from __future__ import annotations

import math

from app.matrix.view import CREATE, MEMBER, RoomState
from app.state import AgentMapping
from app.sync import power
from app.sync.backoff import FIRST_WAIT, after_run, held
from app.sync.state_writes import StatePowerMissing, refused_by, remember_refusal

A, B, C = "@a:hs", "@b:hs", "@c:hs"


def room(
    version: str, levels: dict[str, object] | None, creator: str = A, **create: object
) -> RoomState:
    events = {
        (CREATE, ""): {"room_version": version, "sender": creator, **create},
        **{(MEMBER, user): {"membership": "join"} for user in (A, B, C)},
    }
    if levels is not None:
        events[(power.POWER_LEVELS, "")] = levels
    return RoomState(events)


def test_creators_of_version_12_outrank_every_level_and_older_ones_do_not() -> None:
    v12 = room("12", {"users": {B: 100}}, additional_creators=[C])
    v10 = room("10", {"users": {A: 100, B: 50}})
    assert power.creators(v12) == {A, C} and power.level_of(v12, A) == math.inf
    assert power.creators(v10) == set() and power.level_of(v10, A) == 100
    assert power.level_of(v10, C) == 0


def test_levels_default_as_the_spec_says_and_may_be_strings() -> None:
    none = room("10", None)
    assert power.level_of(none, A) == 100 and power.level_of(none, B) == 0
    assert power.needed_for(none, "m.room.name") == 0
    strings = room("10", {"users": {B: "60"}, "events": {"m.room.name": "55"}})
    assert power.level_of(strings, B) == 60 and power.may_write(strings, B, "m.room.name")
    assert power.needed_for(room("10", {}), "m.room.name") == 50


def test_a_refusal_is_forgotten_when_the_levels_change() -> None:
    mapping = AgentMapping("agent", "Agent", A, "pw", True, "!r", True, {})
    before = room("10", {"users": {A: 100, B: 50}})
    remember_refusal(mapping, before, "m.room.name", B)
    assert refused_by(mapping, before, "m.room.name") == {B}
    after = room("10", {"users": {A: 100, B: 60}})
    assert refused_by(mapping, after, "m.room.name") == set()


def test_only_a_level_set_below_the_need_counts_as_demoted_and_is_restored() -> None:
    levels = {"users": {A: 100, B: 0}, "state_default": 50}
    r = room("10", levels)
    assert power.demoted(r, [B, C], ["m.room.name"]) == [B]  # C was never given a level
    assert power.restored_levels(r, [B], A)["users"] == {A: 100, B: 100}


def test_a_hold_doubles_to_its_limit_and_lifts_on_success_or_a_change() -> None:
    mapping = AgentMapping("agent", "Agent", A, "pw", True, "!r", True, {})
    error = StatePowerMissing("no account may write")
    waits = []
    for _ in range(6):
        hold = after_run(mapping, "Agent", ("space", error), 0.0, 150.0, "levels-1")
        waits.append(hold.next_try_at if hold else None)
    assert waits == [0.0, FIRST_WAIT, 2 * FIRST_WAIT, 150.0, 150.0, 150.0]
    assert held(mapping, "Agent", 10.0, "levels-1") is not None
    assert held(mapping, "Agent renamed", 10.0, "levels-1") is None
    assert held(mapping, "Agent", 10.0, "levels-2") is None  # someone changed the levels
    assert after_run(mapping, "Agent", None, 20.0, 150.0) is None
    assert held(mapping, "Agent", 21.0, "levels-1") is None


def test_an_event_without_its_own_level_needs_the_state_default() -> None:
    assert power.needed_for(room("10", {"state_default": 75}), "m.room.name") == 75
    assert power.needed_for(room("10", {"events": {"m.room.name": 20}}), "m.room.name") == 20


def test_the_kick_level_defaults_to_fifty_when_the_levels_leave_it_out() -> None:
    at_fifty = room("10", {"users": {A: 100, B: 50}})
    assert power.may_unban(at_fifty, B, C)  # ban and kick both default to 50
    assert not power.may_unban(room("10", {"users": {A: 100, B: 50}, "kick": 60}), B, C)


def test_demoted_measures_against_the_event_types_own_level() -> None:
    levels = {"users": {A: 100, B: 60}, "events": {"m.room.name": 70}, "state_default": 50}
    r = room("10", levels)
    assert power.demoted(r, [B], ["m.room.name"]) == [B]
    assert power.demoted(r, [B], ["m.room.topic"]) == []
    assert power.demoted(r, [B], []) == []  # nothing to write: nobody is short of power
