"""VRAM-aware admission on one GPU: a weighted FIFO semaphore (DESIGN section 7).

A GPU worker with ``--gpu-share`` runs several runs side by side while the sum
of their declared ``vram_mb`` fits its device minus a reserve. Runs are
admitted strictly in arrival order: a large run at the head of the line waits
for memory to free, and small runs behind it wait too, so it is never starved.
Without sharing, the device runs one run at a time.

:class:`Admission` is the decision, pure and single-threaded (driven step by
step in tests); :class:`VramSemaphore` is the blocking wrapper task threads use.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count


class TooLarge(Exception):
    """A run declares more memory than the device can ever give it."""


@dataclass
class Admission:
    """Which runs hold the device, and which wait, in order.

    Attributes:
        capacity_mb: Memory runs may declare in all (the device's total minus the reserve).
        max_runs: Runs side by side at most (1 without ``--gpu-share``).
    """

    capacity_mb: int
    max_runs: int = 1
    held: dict[int, int] = field(default_factory=dict)
    waiting: deque[tuple[int, int]] = field(default_factory=deque)

    def weight(self, vram_mb: int) -> int:
        """What a run declaring ``vram_mb`` counts against the device: a run that
        declares nothing may use anything, so it counts as the whole device."""
        return vram_mb if vram_mb > 0 else self.capacity_mb

    @property
    def used_mb(self) -> int:
        """Memory declared by the runs admitted now."""
        return sum(self.held.values())

    def ask(self, ticket: int, vram_mb: int) -> list[int]:
        """Put ``ticket`` in line; returns the tickets admitted now.

        Raises:
            TooLarge: ``vram_mb`` exceeds the capacity: it could never be admitted.
        """
        if vram_mb > self.capacity_mb:
            raise TooLarge(
                f"the run declares vram_mb {vram_mb}, and this GPU offers {self.capacity_mb} MiB"
            )
        self.waiting.append((ticket, self.weight(vram_mb)))
        return self._admit()

    def release(self, ticket: int) -> list[int]:
        """``ticket`` ended (or gave up waiting); returns the tickets admitted now."""
        if self.held.pop(ticket, None) is None:
            self.waiting = deque(item for item in self.waiting if item[0] != ticket)
        return self._admit()

    def _admit(self) -> list[int]:
        admitted = []
        while self.waiting and len(self.held) < self.max_runs:
            ticket, weight = self.waiting[0]
            if self.used_mb + weight > self.capacity_mb:
                break  # strict FIFO: nothing overtakes the head of the line
            self.waiting.popleft()
            self.held[ticket] = weight
            admitted.append(ticket)
        return admitted


class VramSemaphore:
    """:class:`Admission` for threads: :meth:`hold` blocks until the run is admitted."""

    def __init__(self, capacity_mb: int, max_runs: int = 1) -> None:
        self.admission = Admission(capacity_mb, max_runs)
        self._changed = threading.Condition()
        self._tickets = count()
        self._admitted: set[int] = set()

    @contextmanager
    def hold(self, vram_mb: int) -> Iterator[None]:
        """Wait for the device, run the body, give the memory back.

        Raises:
            TooLarge: The run can never fit this device.
        """
        with self._changed:
            ticket = next(self._tickets)
            self._admitted.update(self.admission.ask(ticket, vram_mb))
            self._changed.notify_all()
            try:
                while ticket not in self._admitted:
                    self._changed.wait()
            except BaseException:  # interrupted while waiting: leave the line
                self._admitted.discard(ticket)
                self._admitted.update(self.admission.release(ticket))
                self._changed.notify_all()
                raise
        try:
            yield
        finally:
            with self._changed:
                self._admitted.discard(ticket)
                self._admitted.update(self.admission.release(ticket))
                self._changed.notify_all()
