"""Letta REST API (`/v1`): agents and their recent messages."""

from app.letta.client import LettaClient
from app.letta.directory import LettaDirectory
from app.letta.types import Agent, AgentList, LettaMessage

__all__ = ["Agent", "AgentList", "LettaClient", "LettaDirectory", "LettaMessage"]
