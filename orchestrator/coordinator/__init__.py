"""The coordinator: the scheduler driven over workers, jobs taken from the store.

Its Celery executor lives in :mod:`orchestrator.celery`.
"""

from orchestrator.coordinator.service import Coordinator

__all__ = ["Coordinator"]
