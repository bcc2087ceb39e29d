"""Import an agent's recent Letta conversation into its new room."""

from __future__ import annotations

from collections.abc import Callable

from app.letta import LettaClient, LettaMessage
from app.matrix import MatrixClient

HISTORICAL_KEY = "m.letta_historical"


def importable(messages: list[LettaMessage]) -> list[LettaMessage]:
    """User and assistant messages with text; a leading orphan tool return is dropped."""
    while messages and messages[0].message_type == "tool_return_message":
        messages = messages[1:]
    return [m for m in messages if m.is_conversation and m.text.strip()]


def message_content(message: LettaMessage) -> dict[str, object]:
    return {"msgtype": "m.text", "body": message.text, HISTORICAL_KEY: True}


async def import_history(
    letta: LettaClient,
    agent: MatrixClient,
    agent_id: str,
    room_id: str,
    limit: int,
    *,
    done: set[str] | None = None,
    on_sent: Callable[[str], None] | None = None,
) -> int:
    """Post the last `limit` messages as the agent user; returns how many were posted.

    `done` holds the keys of messages an interrupted import already posted, and `on_sent`
    records each new one: transaction ids alone do not deduplicate across devices or days.
    """
    if limit <= 0:
        return 0
    posted = 0
    for index, message in enumerate(importable(await letta.recent_messages(agent_id, limit))):
        key = message.id or f"index-{index}"
        if done is not None and key in done:
            continue
        await agent.send_event(room_id, message_content(message), txn_id=f"letta-history-{key}")
        posted += 1
        if on_sent is not None:
            on_sent(key)
    return posted
