"""Who may write a room's state, from its power levels and creation (pure functions)."""

from __future__ import annotations

import math

import pytest

from app.matrix.view import CREATE, MEMBER, RoomState
from app.state import AgentMapping, MappingStore
from app.sync import power
from app.sync.backoff import FIRST_WAIT, after_run, held
from app.sync.state_writes import StatePowerMissing, refused_by, remember_refusal
from app.testing.harness import SyncHarness

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


def test_the_defaults_a_levels_event_names_apply_to_whom_and_what_it_does_not_list() -> None:
    levels = room("10", {"users_default": 10, "state_default": 75, "users": {B: 60}})

    assert power.level_of(levels, C) == 10
    assert power.needed_for(levels, "m.room.topic") == 75


def test_lifting_a_ban_needs_both_the_ban_and_the_kick_level() -> None:
    ban_high = room("10", {"users": {A: 60, B: 0}, "ban": 100, "kick": 0})
    defaults = room("10", {"users": {A: 50, B: 0}})  # ban and kick at their default 50
    kick_high = room("10", {"users": {A: 60, B: 0}, "ban": 0, "kick": 100})

    assert not power.may_unban(ban_high, A, B)
    assert power.may_unban(defaults, A, B)
    assert not power.may_unban(kick_high, A, B)


def test_levels_that_list_no_users_demote_nobody() -> None:
    assert power.demoted(room("10", {"events": {"m.room.name": 100}}), [B], ["m.room.name"]) == []
    assert power.demoted(room("10", {"users": ["not", "a", "map"]}), [B], ["m.room.name"]) == []


def test_the_fingerprint_does_not_depend_on_the_order_of_the_keys() -> None:
    one = room("10", {"users": {A: 100, B: 50}, "ban": 50, "kick": 50})
    other = room("10", {"kick": 50, "ban": 50, "users": {B: 50, A: 100}})

    assert power.levels_fingerprint(one) == power.levels_fingerprint(other)


async def synced_then_renamed(h: SyncHarness) -> str:
    """An agent synced as "Before", then renamed "After" in Letta: the next sync renames."""
    agent_id = h.letta.add_agent("Before")
    await h.sync()
    h.letta.rename(agent_id, "After")
    return agent_id


@pytest.mark.anyio
async def test_a_writer_the_homeserver_refuses_for_power_is_remembered_and_the_next_writes(
    sync_harness: SyncHarness,
) -> None:
    """The view said the admin may; the homeserver says its level is too low (Synapse's
    words): the agent user writes the name instead, and the refusal is kept for next time."""
    h = sync_harness
    agent_id = await synced_then_renamed(h)
    refusal = "You don't have permission to post that to the room. user_level (0) < send_level (50)"
    h.homeserver.fail_next("put_state", 403, {"errcode": "M_FORBIDDEN", "error": refusal})

    report = await h.sync()

    mapping = MappingStore.read(h.data_dir).get(agent_id)
    assert report.ok and report.renamed == [agent_id], report.failures
    assert h.homeserver.state(mapping.room_id, "m.room.name") == {"name": "After"}
    assert report.actions[agent_id][-1] == f"rename: m.room.name as {mapping.matrix_user_id}"
    assert mapping.refused_state is not None
    assert mapping.refused_state["refused"] == {"m.room.name": [h.admin_id]}


@pytest.mark.anyio
async def test_a_refusal_that_names_no_power_fails_the_agent_and_is_not_remembered(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = await synced_then_renamed(h)
    h.homeserver.fail_next("put_state", 403, {"errcode": "M_FORBIDDEN", "error": "spam checker"})

    report = await h.sync()

    assert [f.agent_id for f in report.failures] == [agent_id]
    assert not MappingStore.read(h.data_dir).get(agent_id).refused_state
