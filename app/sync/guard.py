"""Refuse to start over in an empty data directory when the homeserver says it is not new.

A data directory lost or mistyped looks like a first run; going on would fail every agent
(their passwords are in the old directory) and create a second space. One sample of agent
users is enough to tell.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.errors import ConfigError, MatrixForbidden
from app.identity.naming import agent_user_id
from app.letta import Agent
from app.matrix import MatrixClient
from app.matrix.ids import localpart_of, server_name_of
from app.matrix.view import HomeserverView
from app.state import Store
from app.sync.space import tagged_space

SAMPLE = 5


async def refuse_unknown_deployment(
    admin: MatrixClient, store: Store, agents: Sequence[Agent], homeserver: HomeserverView
) -> None:
    """`ConfigError` when the store is empty but the server holds this deployment: agent
    users and the admin's tagged space (a squatted name alone is an agent's failure)."""
    if store.mappings or store.space.space_id is not None:
        return
    server_name = server_name_of(admin.user_id or "")
    taken = []
    for agent in _spread(agents, SAMPLE):
        user_id = agent_user_id(agent.id, server_name)
        try:
            if not await admin.username_available(localpart_of(user_id)):
                taken.append(user_id)
        except MatrixForbidden:
            return  # registration is closed: availability cannot be asked
    if taken and tagged_space(homeserver) is not None:
        raise ConfigError(_explain(store.location, taken))


def _spread(agents: Sequence[Agent], count: int) -> list[Agent]:
    """Up to `count` agents from across the list: new agents tend to sit together."""
    if len(agents) <= count:
        return list(agents)
    step = (len(agents) - 1) / (count - 1)
    return [agents[round(i * step)] for i in range(count)]


def _explain(location: str, taken: list[str]) -> str:
    where = (
        "MATRIX_STORE_URL at its database"
        if location.startswith("MATRIX_STORE_URL")
        else "MATRIX_DATA_DIR at its data directory (the one holding agent_user_mappings.json)"
    )
    return (
        f"{location} holds no state, but the homeserver already has "
        f"users for this Letta's agents ({', '.join(taken)}): this is an existing deployment. "
        f"Point {where}, which has the agents' passwords; no agent user, room or space was made"
    )
