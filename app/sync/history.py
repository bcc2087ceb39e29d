"""Import an agent's recent Letta conversation into its new room, each message exactly once.

Each imported event carries the Letta message's key (`ai.letta.message_id`), so an import that
resumes in a room found again after a crash or a lost reply reads the room and skips what is
already there, whatever device or data directory posted it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import MatrixError
from app.letta import LettaClient, LettaMessage
from app.matrix import MatrixClient

HISTORICAL_KEY = "m.letta_historical"
MESSAGE_KEY = "ai.letta.message_id"
# A whole event (content and envelope) must fit in this many bytes of canonical JSON.
MAX_EVENT_BYTES = 65_536
# Bytes left for the envelope the homeserver adds (ids, hashes, signatures, auth events),
# tried in turn: the first fits a usual event, the second one with long ids.
ENVELOPE_RESERVES = (1_024, 4_096)
SHORTENED_MARKER = "\n\n[… shortened: the full message is too long for Matrix]"


@dataclass
class ImportResult:
    posted: int = 0
    shortened: int = 0
    skipped: list[str] = field(default_factory=list)


def importable(messages: list[LettaMessage]) -> list[LettaMessage]:
    """User and assistant messages with text; a leading orphan tool return is dropped."""
    while messages and messages[0].message_type == "tool_return_message":
        messages = messages[1:]
    return [m for m in messages if m.is_conversation and m.text.strip()]


def message_content(message: LettaMessage, key: str) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": message.text, HISTORICAL_KEY: True, MESSAGE_KEY: key}


def content_size(content: dict[str, Any]) -> int:
    """Bytes of `content` as canonical JSON, as the homeserver counts them."""
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return len(text.encode("utf-8"))


def fitted(content: dict[str, Any], budget: int) -> dict[str, Any]:
    """`content` whose body is the longest prefix that fits `budget` bytes, marked if cut."""
    if content_size(content) <= budget:
        return content
    body: str = content["body"]
    low, high = 0, len(body)  # the longest fitting prefix length lies in [low, high)
    while low < high - 1:
        middle = (low + high) // 2
        candidate = {**content, "body": body[:middle] + SHORTENED_MARKER}
        low, high = (middle, high) if content_size(candidate) <= budget else (low, middle)
    return {**content, "body": body[:low] + SHORTENED_MARKER}


async def posted_keys(agent: MatrixClient, room_id: str) -> set[str]:
    """Keys of the history messages this agent already posted in the room."""
    keys = set()
    async for event in agent.recent_events(room_id):
        key = event.content.get(MESSAGE_KEY)
        if event.sender == agent.user_id and isinstance(key, str):
            keys.add(key)
    return keys


async def import_history(
    letta: LettaClient,
    agent: MatrixClient,
    agent_id: str,
    room_id: str,
    limit: int,
    *,
    done: set[str] | None = None,
    on_sent: Callable[[str], Awaitable[None]] | None = None,
) -> ImportResult:
    """Post the last `limit` messages as the agent user.

    `done` holds the keys already posted (or given up on), and `on_sent` records each new
    one, posted or skipped: a message is never tried again once the room has it or it cannot
    fit in an event.
    """
    result = ImportResult()
    if limit <= 0:
        return result
    for index, message in enumerate(importable(await letta.recent_messages(agent_id, limit))):
        key = message.id or f"index-{index}"
        if done is not None and key in done:
            continue
        await _send_one(agent, room_id, message_content(message, key), key, result)
        if on_sent is not None:
            await on_sent(key)
    return result


async def _send_one(
    agent: MatrixClient, room_id: str, content: dict[str, Any], key: str, result: ImportResult
) -> None:
    for reserve in ENVELOPE_RESERVES:
        event = fitted(content, MAX_EVENT_BYTES - reserve)
        try:
            await agent.send_event(room_id, event, txn_id=f"letta-history-{key}")
        except MatrixError as exc:
            if exc.status != 413:  # M_TOO_LARGE, or a proxy's own body-size limit
                raise
            continue
        result.posted += 1
        result.shortened += event is not content
        return
    result.skipped.append(key)
