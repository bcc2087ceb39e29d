"""An agent's recent conversation as a reader expects it, paged out of Letta's message log.

Letta's `limit` counts stored messages of every kind (system, reasoning, tool calls and
returns, heartbeats), so one page of `limit` records may hold few conversation lines. This
pages back until it has the lines asked for, or reaches the start.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.letta.client import LettaClient
from app.letta.types import LettaMessage

# Stored messages asked for per conversation line wanted: a user line, the agent's reasoning
# and answer, and the answer's tool return are about four.
ROWS_PER_LINE = 4
MIN_PAGE_ROWS = 50
# A log of heartbeats and tool calls with no words in it is not read back for ever.
MAX_PAGES = 20


@dataclass(frozen=True)
class Conversation:
    """The last lines of an agent's conversation, oldest first, with keys unique per line."""

    lines: tuple[LettaMessage, ...]
    # True when the log's first message was read: nothing older was left out.
    from_start: bool


async def recent_conversation(letta: LettaClient, agent_id: str, wanted: int) -> Conversation:
    """The last `wanted` user and assistant lines; never a room that starts mid-exchange.

    When older lines were left out, leading answers are dropped, so the first line shown is a
    question rather than an answer whose question is missing.
    """
    if wanted <= 0:
        return Conversation((), True)
    log, from_start = await _read_back(letta, agent_id, wanted)
    every_line = _lines(log)
    lines = every_line[-wanted:]
    if not from_start or len(every_line) > wanted:
        lines = _from_first_question(lines)
    return Conversation(tuple(lines), from_start)


async def _read_back(
    letta: LettaClient, agent_id: str, wanted: int
) -> tuple[list[LettaMessage], bool]:
    rows = max(MIN_PAGE_ROWS, wanted * ROWS_PER_LINE)
    log: list[LettaMessage] = []
    seen: set[str] = set()
    before: str | None = None
    for _ in range(MAX_PAGES):
        page = await letta.message_page(agent_id, rows, before)
        ids = {message.id for message in page if message.id}
        if not page or ids & seen:
            # An empty page is the start; a page that repeats what was read is a server that
            # pages differently: stop rather than post a line twice.
            return log, not page
        seen |= ids
        log = page + log
        oldest = page[0].id
        if len(_lines(log)) >= wanted or oldest is None:
            return log, False
        before = oldest
    return log, False


def _lines(log: list[LettaMessage]) -> list[LettaMessage]:
    return [message for message in log if message.is_conversation and message.text.strip()]


def _from_first_question(lines: list[LettaMessage]) -> list[LettaMessage]:
    """`lines` from the first user line on; unchanged when there is no user line at all."""
    for index, message in enumerate(lines):
        if message.message_type == "user_message":
            return lines[index:]
    return lines


def keyed(lines: tuple[LettaMessage, ...]) -> list[tuple[str, LettaMessage]]:
    """Each line with a key no other line of the list has (a record without any id gets its
    position: Letta always sends ids, so that is only a last resort)."""
    result: list[tuple[str, LettaMessage]] = []
    used: set[str] = set()
    for index, message in enumerate(lines):
        key = message.key or f"index-{index}"
        while key in used:
            key += "+"
        used.add(key)
        result.append((key, message))
    return result
