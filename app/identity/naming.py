"""An agent's Matrix user, derived from untrusted Letta data: its localpart, its user id,
its password."""

from __future__ import annotations

import hashlib
import re
import secrets

from app.matrix.ids import user_id_from

# Matrix caps a full user id at 255 bytes; leave room for "@", ":" and a long server name.
MAX_LOCALPART = 180
_READABLE = re.compile(r"[a-z0-9][a-z0-9-]*")
_INVALID = re.compile(r"[^a-z0-9_]")


def agent_localpart(agent_id: str) -> str:
    """A stable, valid localpart: `agent-<uuid>` becomes `agent_<uuid with underscores>`.

    Ids of lowercase letters, digits and `-` keep that readable form. Any other id gets a
    hashed form `<cleaned id>.<hash>`: the `.` never occurs in a readable form, so distinct ids
    never share a localpart, and the result never starts with `_` (reserved by Synapse).
    """
    readable = agent_id.replace("-", "_")
    if _READABLE.fullmatch(agent_id) and len(agent_id) <= MAX_LOCALPART and not _numeric(readable):
        return readable
    digest = hashlib.sha256(agent_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    base = _INVALID.sub("_", agent_id.lower()).strip("_")[: MAX_LOCALPART - len(digest) - 1]
    return f"{base or 'agent'}.{digest}"


def _numeric(localpart: str) -> bool:
    """Synapse reserves localparts that parse as integers (`1_2` does) for guests."""
    try:
        int(localpart)
    except ValueError:
        return False
    return True


def new_password() -> str:
    return secrets.token_urlsafe(32)


def agent_user_id(agent_id: str, server_name: str) -> str:
    """The user an agent is on this homeserver, before any mapping records one."""
    return user_id_from(agent_localpart(agent_id), server_name)
