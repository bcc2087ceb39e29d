"""`Store`: what the sync needs from its state, whichever backend holds it.

Reads come from memory (a store loads everything when it opens: a sync reads each mapping
many times and a few thousand mappings fit easily); writes are awaited, so a backend that
talks to a database can do so off the event loop. A write has reached its backend when the
call returns; `fsync=True` asks for the strongest durability the backend has (the JSON files
fsync; a PostgreSQL commit is already durable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.state.models import AgentMapping, SpaceConfig


@dataclass(frozen=True)
class StoredToken:
    access_token: str = field(repr=False)
    device_id: str | None = None


def moved_on(view: Any, token: Any) -> Any:
    """The saved view with the token `save_view_token` moved it on to (`moved_on_to`), when
    that was saved for this very view (one saved for an older view is ignored)."""
    if not isinstance(view, dict) or not isinstance(token, dict):
        return view
    if token.get("base") != view.get("next_batch") or not isinstance(token.get("next_batch"), str):
        return view
    return {**view, "moved_on_to": token["next_batch"]}


class MemoryReads:
    """The reads a store serves from what it loaded (see the module doc)."""

    mappings: dict[str, AgentMapping]
    tokens: dict[str, StoredToken]

    def get(self, agent_id: str) -> AgentMapping | None:
        return self.mappings.get(agent_id)

    def all(self) -> list[AgentMapping]:
        return list(self.mappings.values())

    def token(self, user_id: str) -> StoredToken | None:
        return self.tokens.get(user_id)


class Store(Protocol):
    """Mappings, the space config and access tokens of one deployment."""

    @property
    def location(self) -> str:
        """Where the state lives, for messages: the setting and its (redacted) value."""
        ...

    @property
    def mappings(self) -> Mapping[str, AgentMapping]: ...

    @property
    def space(self) -> SpaceConfig: ...

    @property
    def tokens(self) -> Mapping[str, StoredToken]: ...

    @property
    def has_pending_changes(self) -> bool:
        """Changes saved but not yet folded into the backend's final form."""
        ...

    def get(self, agent_id: str) -> AgentMapping | None: ...

    def all(self) -> list[AgentMapping]: ...

    def token(self, user_id: str) -> StoredToken | None: ...

    async def save_mapping(self, mapping: AgentMapping, *, fsync: bool = False) -> None: ...

    async def save_token(self, user_id: str, access_token: str, device_id: str | None) -> None: ...

    async def save_space(self, space: SpaceConfig) -> None: ...

    async def compact(self) -> None: ...

    async def load_view(self) -> Any:
        """The homeserver view saved by the last sync (`app.matrix.view`), or None. It is a
        cache: whatever is wrong with it costs one full read, never a wrong answer."""
        ...

    async def save_view(self, data: Any) -> None: ...

    async def save_view_token(self, base: str, next_batch: str) -> None:
        """Move the saved view (which is at token `base`) on to `next_batch`, without
        rewriting it: nothing it holds changed in between. `load_view` applies it."""
        ...

    async def aclose(self) -> None:
        """Fold pending changes in and release what the store holds (locks, connections)."""
        ...
