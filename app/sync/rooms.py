"""Agent rooms: creation, finding them again, liveness and membership of the admin and bot."""

from __future__ import annotations

import logging
from typing import Any

from app.errors import MatrixForbidden, MatrixLoginRefused
from app.matrix import MatrixClient
from app.sync.space import SPACE_PARENT, parent_content

log = logging.getLogger(__name__)

# Namespaced state event in every agent room: lets a rerun find a room whose id was never
# recorded (a crash right after createRoom) instead of creating a second one.
AGENT_TAG = "ai.letta.agent"
MAX_NAME_LENGTH = 255


def room_name(template: str, agent_id: str, agent_name: str) -> str:
    return template.format(name=agent_name, agent_id=agent_id)


def clip(text: str) -> str:
    """Homeservers reject very long names; Letta does not limit them."""
    return text if len(text) <= MAX_NAME_LENGTH else text[: MAX_NAME_LENGTH - 1] + "…"


def room_create_options(
    *,
    agent_id: str,
    name: str,
    invite: list[str],
    space_id: str,
    server_name: str,
) -> dict[str, Any]:
    return {
        "name": clip(name),
        "topic": clip(f"Conversation with the Letta agent {name}"),
        "preset": "trusted_private_chat",
        "invite": invite,
        "initial_state": [
            {"type": SPACE_PARENT, "state_key": space_id, "content": parent_content(server_name)},
            {"type": AGENT_TAG, "state_key": "", "content": {"agent_id": agent_id}},
        ],
    }


async def find_tagged_room(agent: MatrixClient, agent_id: str, exclude: set[str]) -> str | None:
    """A room the agent user is in whose tag names this agent, if there is one."""
    for room_id in await agent.joined_rooms():
        if room_id in exclude:
            continue
        try:
            tag = await agent.get_state_event(room_id, AGENT_TAG)
        except MatrixForbidden:
            continue
        if tag is not None and tag.get("agent_id") == agent_id:
            return room_id
    return None


async def agent_is_in_room(agent: MatrixClient, room_id: str) -> bool:
    """Whether the room exists with the agent joined to it.

    Synapse answers 403 both for a room that does not exist and for one the caller never
    joined, so a 403 means "not usable", never "it exists". A user who left may still read
    the state as it was when they left: only their own membership tells.
    """
    try:
        member = await agent.get_state_event(room_id, "m.room.member", agent.user_id or "")
    except MatrixLoginRefused:
        raise  # the agent's account, not the room: nothing to replace
    except MatrixForbidden:
        return False
    return member is not None and member.get("membership") == "join"
