"""When the GPU supervisor starts a crashed worker process again, and when it
gives up on a device: a pure policy over the times of its crashes.

A worker process that stops without being asked is started again after a
backoff that doubles with each recent crash (capped). A device whose process
crashed ``max_crashes`` times within ``window_s`` is given up: a process that
dies at once every time (a broken driver, a device that fell off the bus)
would otherwise be restarted forever while its GPU serves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """How crashed GPU worker processes are started again.

    Attributes:
        backoff_s: Wait before the first restart.
        max_backoff_s: Longest wait before any restart.
        multiplier: Growth of the wait per recent crash.
        max_crashes: Crashes within ``window_s`` after which the device is given up.
        window_s: How far back crashes count.
    """

    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    multiplier: float = 2.0
    max_crashes: int = 5
    window_s: float = 300.0

    def recent(self, crashes: Sequence[float], now: float) -> list[float]:
        """The crash times that still count at ``now``."""
        return [at for at in crashes if now - at <= self.window_s]

    def gives_up(self, crashes: Sequence[float], now: float) -> bool:
        """Whether a device whose process crashed at ``crashes`` is given up."""
        return len(self.recent(crashes, now)) >= self.max_crashes

    def delay(self, crashes: Sequence[float], now: float) -> float:
        """Seconds to wait before starting the process again (after its latest crash)."""
        count = max(1, len(self.recent(crashes, now)))
        return min(self.max_backoff_s, self.backoff_s * self.multiplier ** (count - 1))
