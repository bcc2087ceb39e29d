"""`LettaDirectory`: Letta's agents as the last listing left them, kept between syncs.

A caller that syncs again and again (the `run` service) keeps one, and a steady sync then asks
Letta only what changed: the agents by `updated_at` down to the newest change the directory
saw, and Letta's count. The count proves that no agent the directory knows was deleted: every
agent created since has changed since, so it is in the answer, and Letta then holds exactly the
known agents plus the new ones. Anything else (a count that does not add up, a record without
a date or an id, a listing that was not whole) means a full walk, and so does every
`full_every`-th sync, whatever else it missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.letta.listing import Walk
from app.letta.types import AgentList

# Letta stamps `updated_at` before its transaction commits: a change committed while a walk
# ran may carry a stamp older than one the walk saw. Walks start this far before the newest.
COMMIT_SLACK = timedelta(seconds=5)
FULL_EVERY = 30


@dataclass
class LettaDirectory:
    full_every: int = FULL_EVERY
    listing: AgentList | None = None
    newest: datetime | None = None
    changes_since_full: int = 0

    def since(self) -> datetime | None:
        """Where the next walk of changes starts, or None when it must be a full walk."""
        listing = self.listing
        if listing is None or self.newest is None or self.changes_since_full >= self.full_every:
            return None
        if listing.incomplete is not None or listing.invalid:
            return None  # broken records have no id to keep them by: list them in full
        return self.newest - COMMIT_SLACK

    def record_full(self, walk: Walk, start: datetime | None) -> AgentList:
        """Keep a full walk's list; `start` is Letta's newest change before the walk began
        (never a later page's: a change made during the walk, to an agent on a page already
        read, is newer than `start`, so the next walk of changes finds it)."""
        listing = walk.result()
        whole = listing.incomplete is None and walk.dated and start is not None
        self.listing = listing if whole else None
        self.newest = start if whole else None
        self.changes_since_full = 0
        return listing

    def merge(self, walk: Walk, expected: int | None) -> AgentList | None:
        """The whole list, the directory's with the walk's changes; None when the count does
        not prove that nothing else changed."""
        changes = walk.result()
        known = self.listing
        if known is None or expected is None or changes.incomplete or changes.invalid:
            return None
        if not walk.dated or len(known.listed_ids | changes.listed_ids) != expected:
            return None
        agents = {agent.id: agent for agent in known.agents}
        agents.update(changes.by_id())
        listing = AgentList(
            tuple(agents.values()), (), changes.pages, known.listed_ids | changes.listed_ids
        )
        self.listing = listing
        # The walk's first record is Letta's newest change when it began (a later one moved
        # ahead of the pages still to come): where the next walk starts.
        self.newest = walk.head or self.newest
        self.changes_since_full += 1
        return listing
