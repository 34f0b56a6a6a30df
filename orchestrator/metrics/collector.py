"""The coordinator's Prometheus collector: the store and the broker, read at scrape.

A scrape reads a fresh :class:`~orchestrator.metrics.snapshot.Snapshot` at
most every ``max_age_s``; scrapes in between (a second Prometheus, a storm of
curls) get the cached one, so the store sees a few aggregate queries per
``max_age_s`` whatever the scrape rate. A source that cannot be read is
reported by ``segue_metrics_source_up`` and logged once, never raised into
the scrape: the other series still come.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from nodes.registry import NodeRegistry
from orchestrator.depths import BrokerDepths
from orchestrator.metrics.families import families
from orchestrator.metrics.snapshot import Plans, Snapshot, read_queues, read_store
from orchestrator.store.base import JobRecord, ProcessRecord, Store

log = logging.getLogger("segue.metrics")

MAX_AGE_S = 5.0
"""Default: how long one snapshot answers scrapes."""


class SegueCollector(Collector):
    """Every series of DESIGN section 6, computed from the store and the broker.

    Args:
        store: The state store (shared with the coordinator: it is thread-safe).
        registry: Node types, to plan stored workflows (their queues and routes).
        depths: Queue depths on the broker; ``None`` leaves ``segue_queue_depth`` empty.
        worker_timeout_s: A worker silent this long counts as dead.
        max_age_s: How long one snapshot answers scrapes.
        clock: Wall-clock time, compared with heartbeats.
        monotonic: Measures the snapshot's age.
    """

    def __init__(
        self,
        store: Store,
        registry: NodeRegistry,
        depths: BrokerDepths | None = None,
        *,
        worker_timeout_s: float,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.depths = depths
        self.worker_timeout_s = worker_timeout_s
        self.max_age_s = max_age_s
        self._plans = Plans(store, registry)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._taken = 0.0
        self._failing: set[str] = set()

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (the registry registers the names without
        reading the store)."""
        return families(Snapshot())

    def collect(self) -> Iterator[Metric]:
        """The families of the current snapshot."""
        return families(self.snapshot())

    def snapshot(self) -> Snapshot:
        """The cached snapshot, or a new one when it is ``max_age_s`` old."""
        with self._lock:
            if self._snapshot is None or self._monotonic() - self._taken >= self.max_age_s:
                self._snapshot = self._read()
                self._taken = self._monotonic()
            return self._snapshot

    def _read(self) -> Snapshot:
        running: list[JobRecord] = []
        processes: list[ProcessRecord] = []
        try:
            snapshot, running, processes = read_store(
                self.store, self._clock(), self.worker_timeout_s
            )
        except Exception as exc:  # every store error: the scrape still answers
            snapshot = Snapshot()
            self._failed("store", exc)
        else:
            self._recovered("store")
        snapshot.sources["store"] = snapshot.tallies is not None
        if self.depths is not None:
            try:
                snapshot.queues = read_queues(self.depths, self._plans, running, processes)
            except Exception as exc:  # each broker transport raises its own errors
                self._failed("broker", exc)
            else:
                self._recovered("broker")
            snapshot.sources["broker"] = snapshot.queues is not None
        return snapshot

    def _failed(self, source: str, exc: BaseException) -> None:
        if source not in self._failing:
            log.warning("metrics cannot read the %s (%s: %s)", source, type(exc).__name__, exc)
        self._failing.add(source)

    def _recovered(self, source: str) -> None:
        if source in self._failing:
            log.info("metrics read the %s again", source)
        self._failing.discard(source)
