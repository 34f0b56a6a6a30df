"""Prometheus metrics of the coordinator (DESIGN section 6, Observability).

Every series is computed at scrape from the store and the broker
(:class:`SegueCollector`), never counted in a process's memory: counters are
totals over the store's rows, so they survive coordinator restarts, a worker
that comes and goes, and read the same on every coordinator replica.
:func:`serve_metrics` serves them at ``/metrics``. A worker's own
process-local series are in :mod:`workers.metrics`.
"""

from orchestrator.metrics.collector import SegueCollector
from orchestrator.metrics.server import (
    MetricsServer,
    coordinator_registry,
    prometheus_registry,
    segue_collector,
    serve_metrics,
)
from orchestrator.metrics.snapshot import DURATION_BUCKETS, Snapshot

__all__ = [
    "DURATION_BUCKETS",
    "MetricsServer",
    "SegueCollector",
    "Snapshot",
    "coordinator_registry",
    "prometheus_registry",
    "segue_collector",
    "serve_metrics",
]
