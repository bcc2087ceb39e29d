"""The run: everything one sync shares between the per-agent steps (never the configuration:
the steps get their `AgentPolicy`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.identity import Identity
from app.letta import LettaClient
from app.matrix import MatrixClient
from app.matrix.view import HomeserverView
from app.state import Store
from app.sync.confirm import StateWrite
from app.sync.policy import AgentPolicy
from app.sync.report import SyncReport
from app.sync.space import SpaceView


@dataclass
class SyncContext:
    policy: AgentPolicy
    store: Store
    identity: Identity
    letta: LettaClient
    admin: MatrixClient
    bot: MatrixClient
    server_name: str
    space: SpaceView
    # What the admin's /sync said when this sync started (see `app.sync.drift`).
    homeserver: HomeserverView
    # Rooms the admin and the bot are joined to, from that view, kept up to date as they join.
    admin_rooms: set[str]
    bot_rooms: set[str]
    report: SyncReport
    # The wall clock: when an agent held back after a failure is tried again.
    now: Callable[[], float] = field(default=time.time)
    # The state written into agent rooms, read back at the end (`app.sync.confirm`).
    writes: list[StateWrite] = field(default_factory=list)

    def invitees(self, agent_user_id: str) -> list[str]:
        """Who an agent room invites: admin, bot, configured people; never the agent itself."""
        people = [self.admin.user_id or "", self.bot.user_id or "", *self.policy.invite_users]
        unique = dict.fromkeys(person for person in people if person and person != agent_user_id)
        return list(unique)

    def members_to_join(self) -> list[tuple[MatrixClient, set[str]]]:
        """The accounts this library can join on its own, with the rooms each is in."""
        pairs = [(self.admin, self.admin_rooms)]
        if self.bot.user_id != self.admin.user_id:
            pairs.append((self.bot, self.bot_rooms))
        return pairs
