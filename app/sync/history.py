"""Import an agent's recent Letta conversation into its new room, each message exactly once.

Each imported event carries the Letta message's key (`ai.letta.message_id`), so an import that
resumes in a room found again after a crash or a lost reply reads the room and skips what is
already there, whatever device or data directory posted it.

Every line is posted by the agent's own account, so the user's lines are marked as the user's:
a quote under "User wrote:" (HTML `<blockquote>` for clients that render it, `> ` lines for
the rest), and `ai.letta.role` says `user` or `assistant` for programs.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import MatrixError
from app.letta import LettaClient, LettaMessage
from app.letta.conversation import keyed, recent_conversation
from app.matrix import MatrixClient

HISTORICAL_KEY = "m.letta_historical"
MESSAGE_KEY = "ai.letta.message_id"
ROLE_KEY = "ai.letta.role"
USER_LABEL = "User wrote:"
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


def message_content(message: LettaMessage, key: str, text: str | None = None) -> dict[str, Any]:
    """The event for one line; `text` replaces the message's own (a shortened one)."""
    text = message.text if text is None else text
    content: dict[str, Any] = {"msgtype": "m.text", HISTORICAL_KEY: True, MESSAGE_KEY: key}
    if message.message_type != "user_message":
        return {**content, "body": text, ROLE_KEY: "assistant"}
    quoted = "\n".join(f"> {line}" for line in text.split("\n"))
    as_html = html.escape(text).replace("\n", "<br/>")
    return {
        **content,
        "body": f"{USER_LABEL}\n{quoted}",
        "format": "org.matrix.custom.html",
        "formatted_body": f"<b>{USER_LABEL}</b><blockquote>{as_html}</blockquote>",
        ROLE_KEY: "user",
    }


def spoken_text(content: dict[str, Any]) -> str:
    """The Letta text a history event carries: a user's line without its label and quoting."""
    body = str(content.get("body", ""))
    if content.get(ROLE_KEY) != "user" or not body.startswith(USER_LABEL + "\n"):
        return body
    quoted = body[len(USER_LABEL) + 1 :].split("\n")
    return "\n".join(line.removeprefix("> ") for line in quoted)


def content_size(content: dict[str, Any]) -> int:
    """Bytes of `content` as canonical JSON, as the homeserver counts them."""
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return len(text.encode("utf-8"))


def fitted(message: LettaMessage, key: str, budget: int) -> tuple[dict[str, Any], bool]:
    """(The line's event with the longest prefix of its text that fits `budget` bytes, marked
    if cut; whether it was cut)."""
    content = message_content(message, key)
    if content_size(content) <= budget:
        return content, False
    text = message.text
    low, high = 0, len(text)  # the longest fitting prefix length lies in [low, high)
    while low < high - 1:
        middle = (low + high) // 2
        candidate = message_content(message, key, text[:middle] + SHORTENED_MARKER)
        low, high = (middle, high) if content_size(candidate) <= budget else (low, middle)
    return message_content(message, key, text[:low] + SHORTENED_MARKER), True


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
    """Post the last `limit` conversation lines as the agent user.

    `done` holds the keys already posted (or given up on), and `on_sent` records each new
    one, posted or skipped: a line is never tried again once the room has it or it cannot
    fit in an event. (Imports begun before lines were keyed by otid recorded the stored
    message's id: a line whose id is in `done` counts as posted too.)
    """
    result = ImportResult()
    if limit <= 0:
        return result
    conversation = await recent_conversation(letta, agent_id, limit)
    for key, message in keyed(conversation.lines):
        if done is not None and (key in done or message.id in done):
            continue
        await _send_one(agent, room_id, message, key, result)
        if on_sent is not None:
            await on_sent(key)
    return result


async def _send_one(
    agent: MatrixClient, room_id: str, message: LettaMessage, key: str, result: ImportResult
) -> None:
    for reserve in ENVELOPE_RESERVES:
        event, shortened = fitted(message, key, MAX_EVENT_BYTES - reserve)
        try:
            await agent.send_event(room_id, event, txn_id=f"letta-history-{key}")
        except MatrixError as exc:
            if exc.status != 413:  # M_TOO_LARGE, or a proxy's own body-size limit
                raise
            continue
        result.posted += 1
        result.shortened += shortened
        return
    result.skipped.append(key)
