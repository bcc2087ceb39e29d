"""Names derived from untrusted Letta data: localparts, passwords, room names."""

from __future__ import annotations

import hashlib
import re
import secrets

# Matrix caps a full user id at 255 bytes; leave room for "@", ":" and a long server name.
MAX_LOCALPART = 180
_INVALID = re.compile(r"[^a-z0-9_]")


def agent_localpart(agent_id: str) -> str:
    """A stable, valid localpart: `agent-<uuid>` becomes `agent_<uuid with underscores>`.

    Only a-z, 0-9 and `_` survive. When anything else had to change (case, symbols, non-ASCII)
    or the id is too long, a short hash of the raw id is appended so distinct ids stay distinct.
    """
    base = _INVALID.sub("_", agent_id.lower())
    lossless = agent_id.replace("-", "_") == base
    if lossless and 0 < len(base) <= MAX_LOCALPART:
        return base
    digest = hashlib.sha256(agent_id.encode("utf-8")).hexdigest()[:12]
    return f"{base[: MAX_LOCALPART - len(digest) - 1]}_{digest}".lstrip("_") or digest


def localpart_of(login: str) -> str:
    """`@name:server` or `name` -> `name`."""
    if login.startswith("@"):
        return login[1:].split(":", 1)[0]
    return login


def new_password() -> str:
    return secrets.token_urlsafe(32)


def room_name(template: str, agent_id: str, agent_name: str) -> str:
    return template.format(name=agent_name, agent_id=agent_id)


def server_name_of(user_id: str) -> str:
    """The server part of a *user* id (room ids of version 12 have none; never split those)."""
    return user_id.split(":", 1)[1] if ":" in user_id else ""
