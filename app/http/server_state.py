"""What one server's answers have shown so far, shared by every call to it.

- `Reachability`: whether the server ever answered, and since when it has not (an outage). A
  server that never answered is most likely a wrong URL: calls give up fast. One that answered
  and then stopped is most likely restarting: calls keep trying for the retry budget, and once
  the outage is older than the budget every call gives up at once.
- `RateGates`: after a 429, the requests of that identity (an access token) wait for the
  server's `retry_after` and then go one at a time until one gets through with nobody behind
  it, so waiters never wake together and stampede the limit again.
- `Congestion`: a level that rises with every burst of 429s and falls after a calm spell; the
  sync runs fewer agents at once while it is raised (`app.sync.throttle`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Reachability:
    answered: bool = False
    down_since: float | None = None
    # Set once an outage outlived the retry budget: every later call gives up without waiting.
    lost_after: float | None = None

    def answer(self) -> None:
        self.answered, self.down_since = True, None

    def failure(self, now: float) -> None:
        if self.down_since is None:
            self.down_since = now

    def outage_age(self, now: float) -> float:
        return 0.0 if self.down_since is None else now - self.down_since

    def give_up(self, now: float, budget: float) -> None:
        """A call ran out of budget; if the whole server has been down that long, it is lost.

        A budget of 0 rides out nothing, and declares nothing lost either: each call fails alone.
        """
        if budget > 0 and self.down_since is not None and now - self.down_since >= budget:
            self.lost_after = now - self.down_since

    @property
    def lost(self) -> bool:
        return self.lost_after is not None


@dataclass
class _Gate:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    paused_until: float = 0.0
    waiting: int = 0


class RateGates:
    """One gate per rate-limited identity; identities never limited pass straight through."""

    def __init__(self, monotonic: Clock, sleep: Sleep) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._gates: dict[str, _Gate] = {}

    def limited(self, identity: str) -> bool:
        return identity in self._gates

    def pause(self, identity: str, until: float) -> None:
        gate = self._gates.setdefault(identity, _Gate())
        gate.paused_until = max(gate.paused_until, until)

    @asynccontextmanager
    async def turn(self, identity: str) -> AsyncIterator[bool]:
        """Wait for this identity's turn; yields whether the caller holds the gate.

        The holder of a gate sends, and on a 429 sleeps holding it, so the others stay queued.
        """
        gate = self._gates.get(identity)
        if gate is None:
            yield False
            return
        gate.waiting += 1
        try:
            async with gate.lock:
                gate.waiting -= 1
                wait = gate.paused_until - self._monotonic()
                if wait > 0:
                    await self._sleep(wait)
                yield True
        finally:
            if gate.waiting == 0 and self._gates.get(identity) is gate and not gate.lock.locked():
                del self._gates[identity]


@dataclass
class Congestion:
    """How hard the server is pushing back: 0 = not at all; one step per burst of 429s."""

    cooldown: float = 1.0  # 429s within this long of the last step up count as one burst
    calm: float = 5.0  # seconds without a 429 before the level falls by one step
    max_level: int = 3
    level: int = 0
    _last_rise: float = float("-inf")
    _calm_since: float = float("-inf")

    def rate_limited(self, now: float) -> None:
        if now - self._last_rise >= self.cooldown:
            self.level = min(self.max_level, self.level + 1)
            self._last_rise = now
        self._calm_since = now

    def settle(self, now: float) -> int:
        """The level now, after falling one step per calm spell since the last 429."""
        while self.level > 0 and now - self._calm_since >= self.calm:
            self.level -= 1
            self._calm_since += self.calm
        return self.level


@dataclass
class ServerState:
    """Everything shared by the calls to one server."""

    reachability: Reachability
    gates: RateGates
    congestion: Congestion

    @classmethod
    def create(cls, monotonic: Clock, sleep: Sleep) -> ServerState:
        return cls(Reachability(), RateGates(monotonic, sleep), Congestion())
