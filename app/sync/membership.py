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
        await _invite_or_unban(inviter, room_id, member.user_id or "")
        await member.join(room_id)
    except MatrixError as exc:
        log.warning("%s could not join %s: %s", member.user_id, room_id, exc)
        return "failed"
    return "joined"


async def invite_back(
    inviter: MatrixClient, room_id: str, user_id: str, *, banned: bool = False
) -> None:
    """Invite someone who left or was removed; a banned user is unbanned first, which needs
    the ban level and more power than theirs (`MatrixForbidden` otherwise)."""
    if banned:
        await inviter.unban(room_id, user_id)
    await inviter.invite(room_id, user_id)


async def _invite_or_unban(inviter: MatrixClient, room_id: str, user_id: str) -> None:
    """The member's state is not known here (the admin is not in the room): a refused invite
    may be a ban, which is lifted where the inviter may, then invited again."""
    try:
        await inviter.invite(room_id, user_id)
    except MatrixForbidden:
        await invite_back(inviter, room_id, user_id, banned=True)
