"""Matrix client-server API: request builders (`api`) and the client that sends them."""

from app.matrix.client import Credentials, MatrixClient
from app.matrix.types import HierarchyPage, HierarchyRoom, LoginResult, StateEvent

__all__ = [
    "Credentials",
    "HierarchyPage",
    "HierarchyRoom",
    "LoginResult",
    "MatrixClient",
    "StateEvent",
]
