"""The coordinator: the scheduler driven over Celery workers, jobs taken from the store."""

from orchestrator.coordinator.celery_executor import CeleryExecutor
from orchestrator.coordinator.service import Coordinator

__all__ = ["CeleryExecutor", "Coordinator"]
