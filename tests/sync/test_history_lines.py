"""Which Letta lines a new room starts with, as a reader of the room expects them.

Letta 0.16.8's message log (modelled by the fake; tests/letta_contract_checks.py holds it to
the real server): `limit` counts stored messages of every kind, one step lists as several
records sharing an id, and Letta writes login, heartbeat and system-alert events into the user
role.
"""

from __future__ import annotations

import json

import pytest

from app.letta.types import LettaMessage
from app.sync.history import ROLE_KEY, USER_LABEL, message_content, spoken_text
from app.sync.rooms import MAX_NAME_LENGTH, clip
from app.testing.harness import SyncHarness
from app.testing.letta import FakeLetta

pytestmark = pytest.mark.anyio


def room_of(h: SyncHarness, agent_id: str) -> str:
    mappings = json.loads((h.data_dir / "agent_user_mappings.json").read_text())
    return str(mappings[agent_id]["room_id"])


def room_lines(h: SyncHarness, agent_id: str) -> list[tuple[str, str]]:
    """(role, text) of each imported line, oldest first."""
    room = h.homeserver.room(room_of(h, agent_id))
    return [(e.content[ROLE_KEY], spoken_text(e.content)) for e in room.timeline]


def busy_exchange(letta: FakeLetta, agent_id: str, n: int) -> None:
    """A question, a tool call with its return, and the answer: six stored messages."""
    letta.add_message(agent_id, "user_message", f"question {n}")
    letta.add_message(agent_id, "reasoning_message", "let me look")
    letta.add_message(agent_id, "tool_call_message", '{"q": 1}', tool_name="search")
    letta.add_message(agent_id, "tool_return_message", "found it")
    letta.add_step(agent_id, [("reasoning_message", "now answer"), ("assistant_message", f"a{n}")])
    letta.add_message(agent_id, "tool_return_message", '{"status": "OK"}')


async def test_the_limit_counts_conversation_lines_and_pages_back_for_them(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Researcher")
    for n in range(12):
        busy_exchange(h.letta, agent_id, n)

    report = await h.sync(history_import_limit=6)

    # 6 lines are 3 exchanges: 18 stored messages, more than a page of 6 (or of 15) holds.
    assert room_lines(h, agent_id) == [
        line for n in (9, 10, 11) for line in [("user", f"question {n}"), ("assistant", f"a{n}")]
    ]
    assert report.history_imported == {agent_id: 6}


async def test_a_room_never_starts_with_an_answer_whose_question_was_left_out(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Answerer")
    for n in range(4):
        h.letta.add_message(agent_id, "user_message", f"question {n}")
        h.letta.add_message(agent_id, "assistant_message", f"answer {n}")

    await h.sync(history_import_limit=3)

    assert room_lines(h, agent_id) == [("user", "question 3"), ("assistant", "answer 3")]


async def test_two_answers_of_one_step_are_both_imported(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Double")
    h.letta.add_message(agent_id, "user_message", "tell me twice")
    h.letta.add_step(agent_id, [("assistant_message", "once"), ("assistant_message", "twice")])

    report = await h.sync()
    again = await h.sync()

    assert room_lines(h, agent_id) == [
        ("user", "tell me twice"),
        ("assistant", "once"),
        ("assistant", "twice"),
    ]
    assert report.history_imported == {agent_id: 3} and not again.history_imported


async def test_an_exchange_within_one_second_keeps_its_order(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Quick")
    h.letta.converse(agent_id, "first", "second")
    h.letta.converse(agent_id, "third", "fourth")

    await h.sync()

    assert [text for _, text in room_lines(h, agent_id)] == ["first", "second", "third", "fourth"]


async def test_logins_heartbeats_and_system_alerts_stay_out_of_the_room(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Veteran", agent_type="memgpt_agent")
    h.letta.converse(agent_id, "hello", "hi")
    h.letta.add_machine_event(agent_id, "heartbeat", reason="Automated timer")
    h.letta.add_machine_event(agent_id, "system_alert", message="memory was summarised")
    h.letta.add_message(agent_id, "user_message", '{"not": "an event", "type": "note"}')

    await h.sync()

    assert room_lines(h, agent_id) == [
        ("assistant", "More human than human is our motto."),
        ("user", "hello"),
        ("assistant", "hi"),
        ("user", '{"not": "an event", "type": "note"}'),
    ]


async def test_the_users_lines_are_marked_as_the_users(sync_harness: SyncHarness) -> None:
    h = sync_harness
    agent_id = h.letta.add_agent("Marked")
    h.letta.converse(agent_id, "line one\nline <two>", "noted")

    await h.sync()

    room = h.homeserver.room(room_of(h, agent_id))
    question, answer = (event.content for event in room.timeline)
    assert question["body"] == "User wrote:\n> line one\n> line <two>"
    assert question["formatted_body"] == (
        "<b>User wrote:</b><blockquote>line one<br/>line &lt;two&gt;</blockquote>"
    )
    assert (question[ROLE_KEY], answer[ROLE_KEY], answer["body"]) == ("user", "assistant", "noted")
    assert "format" not in answer


def test_a_users_line_of_several_lines_is_quoted_line_by_line_and_read_back_whole() -> None:
    line = LettaMessage("m1", "user_message", "first <b>\nsecond")

    content = message_content(line, "k1")

    assert content["body"] == f"{USER_LABEL}\n> first <b>\n> second"
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == (
        f"<b>{USER_LABEL}</b><blockquote>first &lt;b&gt;<br/>second</blockquote>"
    )
    assert spoken_text(content) == "first <b>\nsecond"


def test_a_name_at_the_limit_is_kept_whole_and_one_over_is_cut() -> None:
    assert clip("n" * MAX_NAME_LENGTH) == "n" * MAX_NAME_LENGTH
    assert clip("n" * (MAX_NAME_LENGTH + 1)) == "n" * (MAX_NAME_LENGTH - 1) + "…"
