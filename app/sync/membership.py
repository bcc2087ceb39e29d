"""Joining the admin and the bot to rooms they may not have been invited to."""

from __future__ import annotations

import logging

from app.errors import MatrixError, MatrixForbidden
from app.matrix import MatrixClient

log = logging.getLogger(__name__)


async def ensure_joined(member: MatrixClient, inviter: MatrixClient, room_id: str) -> str:
    """Join `member` to the room, asking `inviter` for an invite if the join is refused.

    Returns the invitation status to record: "joined", or "failed" when even that fails.
    """
    try:
        await member.join(room_id)
        return "joined"
    except MatrixForbidden:
        pass
    try:
        await inviter.invite(room_id, member.user_id or "")
        await member.join(room_id)
    except MatrixError as exc:
        log.warning("%s could not join %s: %s", member.user_id, room_id, exc)
        return "failed"
    return "joined"
