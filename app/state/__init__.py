"""State: the `Store` interface; the JSON files the bridge reads (journal, tokens, lock)."""

from app.state.json_store import JsonFileStore
from app.state.models import AgentMapping, InvitationStatus, SpaceConfig
from app.state.protocol import Store, StoredToken
from app.state.store import MappingStore

__all__ = [
    "AgentMapping",
    "InvitationStatus",
    "JsonFileStore",
    "MappingStore",
    "SpaceConfig",
    "Store",
    "StoredToken",
]
