"""An instant clock for retry tests: sleeping advances time without waiting."""

from __future__ import annotations

from app.http.calls import Pacing


class FakeClock:
    """Monotonic time that moves only when someone sleeps; records every requested wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def pacing(self) -> Pacing:
        # random() == 0.5 makes the jitter factor exactly 1: waits equal the raw backoff.
        return Pacing(
            sleep=self.sleep, monotonic=self.monotonic, random=lambda: 0.5, wall=self.monotonic
        )
