"""Garbage-collector tuning while an engine runs."""

from __future__ import annotations

import gc


class gc_tuning:
    """Raise the collector's first threshold while an engine runs; restore it after."""

    def __init__(self, threshold: int) -> None:
        self.saved = gc.get_threshold()
        self.active = threshold > self.saved[0]
        if self.active:
            gc.set_threshold(threshold, *self.saved[1:])

    def restore(self) -> None:
        """Put the thresholds back as they were."""
        if self.active:
            gc.set_threshold(*self.saved)
            self.active = False
