"""Letta's records as this library reads them: what makes an agent record unusable (and the
sentence that says so), message text from either content shape, dates with or without a
zone, and which user messages are Letta's own machine events."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from app.letta.types import Agent, LettaMessage, content_text, parse_date


@pytest.mark.parametrize(
    ("record", "outcome"),
    [
        (["not", "an", "object"], "agent record is not an object: list"),
        ({"name": "No id"}, "agent record without an id"),
        ({"id": "  ", "name": "Blank id"}, "agent record without an id"),
        ({"id": "agent-1"}, "agent 'agent-1' has no name"),
        ({"id": "agent-1", "name": " "}, "agent 'agent-1' has no name"),
        ({"id": "agent-\ud800", "name": "Bad"}, "agent id b'agent-?' is not valid Unicode"),
        ({"id": "agent-1", "name": "Name \ud800"}, Agent("agent-1", "Name ?")),
    ],
)
def test_an_agent_record_is_an_agent_or_the_reason_it_is_not(
    record: object, outcome: Agent | str
) -> None:
    assert Agent.parse(record) == outcome


def test_message_text_comes_from_a_string_or_from_text_parts() -> None:
    parts = ["first", {"type": "text", "text": "second"}, {"type": "image"}, 3, ""]

    assert content_text("plain") == "plain"
    assert content_text(parts) == "first\nsecond"
    assert content_text(None) == ""


def test_a_message_record_keeps_its_ids_and_its_key_prefers_the_otid() -> None:
    both = LettaMessage.parse(
        {"id": "m1", "otid": "o1", "message_type": "assistant_message", "content": "hi"}
    )
    only_id = LettaMessage.parse({"id": "m2", "message_type": "user_message", "content": "yo"})
    neither = LettaMessage.parse({"id": 5, "otid": 6, "message_type": "user_message"})

    assert both is not None and (both.id, both.otid, both.text) == ("m1", "o1", "hi")
    assert both.key == "o1"
    assert only_id is not None and only_id.key == "m2:user_message"
    assert neither is not None and (neither.id, neither.otid, neither.key) == (None, None, None)
    assert LettaMessage.parse({"id": "m3"}) is None
    assert LettaMessage.parse("m4") is None


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2025-01-02T04:04:05+01:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("yesterday", None),
        (1735787045, None),
    ],
)
def test_dates_are_read_as_utc_when_they_name_no_zone(value: object, parsed: object) -> None:
    assert parse_date(value) == parsed


@pytest.mark.parametrize(
    ("message_type", "text", "machine"),
    [
        ("user_message", '{"type": "login", "last_login": "never"}', True),
        ("user_message", '  {"type": "heartbeat"}', True),
        ("user_message", '{"type": "a person\'s own JSON"}', False),
        ("user_message", "{not json", False),
        ("user_message", '["type", "login"]', False),
        ("assistant_message", '{"type": "login"}', False),
    ],
)
def test_letta_machine_events_are_told_from_what_people_wrote(
    message_type: str, text: str, machine: bool
) -> None:
    assert LettaMessage("m", message_type, text).is_machine_event is machine
