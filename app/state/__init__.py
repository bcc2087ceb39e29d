"""State on disk: the two JSON files the bridge reads, a journal, tokens and a lock."""

from app.state.models import AgentMapping, InvitationStatus, SpaceConfig
from app.state.store import MappingStore

__all__ = ["AgentMapping", "InvitationStatus", "MappingStore", "SpaceConfig"]
