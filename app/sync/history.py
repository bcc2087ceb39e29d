"""Import an agent's recent Letta conversation into its new room."""

from __future__ import annotations

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
    letta: LettaClient, agent: MatrixClient, agent_id: str, room_id: str, limit: int
) -> int:
    """Post the last `limit` messages as the agent user; returns how many were posted."""
    if limit <= 0:
        return 0
    messages = importable(await letta.recent_messages(agent_id, limit))
    for index, message in enumerate(messages):
        # A stable transaction id: a retried send delivers the message once.
        txn_id = f"letta-history-{message.id or index}"
        await agent.send_event(room_id, message_content(message), txn_id=txn_id)
    return len(messages)
