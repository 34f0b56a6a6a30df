"""Everything of Segue's orchestrator that knows Celery: the app factory, task names
and the executor that dispatches node runs as Celery tasks.

The task that runs a node lives with the worker (:mod:`workers`); the coordinator
gets its executor from here unless it is given another.
"""

from orchestrator.celery.app import DEAD_LETTER_QUEUE, make_celery, task_name
from orchestrator.celery.executor import CeleryExecutor

__all__ = ["DEAD_LETTER_QUEUE", "CeleryExecutor", "make_celery", "task_name"]
