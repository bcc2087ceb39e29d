"""Keep a Matrix homeserver in step with the agents of a Letta server.

from app import SyncConfig, SyncService

async with SyncService(SyncConfig.from_env()) as service:
    report = await service.sync()
"""

from app import moved
from app.config import SyncConfig
from app.errors import (
    ApiError,
    ConfigError,
    ConnectionFailed,
    LettaError,
    MalformedResponse,
    MatrixError,
    RequestTimeout,
    StateFileError,
    StateWriteError,
    SyncError,
    SyncLocked,
    TlsFailed,
    TransportError,
)
from app.http.transport import Request, Response, Transport
from app.state import AgentMapping, SpaceConfig
from app.sync.report import AgentFailure, SyncReport
from app.sync.service import SyncService, run_agent_sync

moved.install()

__all__ = [
    "AgentFailure",
    "AgentMapping",
    "ApiError",
    "ConfigError",
    "ConnectionFailed",
    "LettaError",
    "MalformedResponse",
    "MatrixError",
    "Request",
    "RequestTimeout",
    "Response",
    "SpaceConfig",
    "StateFileError",
    "StateWriteError",
    "SyncConfig",
    "SyncError",
    "SyncLocked",
    "SyncReport",
    "SyncService",
    "TlsFailed",
    "Transport",
    "TransportError",
    "run_agent_sync",
]
