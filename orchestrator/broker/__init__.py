"""The broker side of distributed mode: the Celery app's configuration and task names."""

from orchestrator.broker.celery_app import make_celery, task_name

__all__ = ["make_celery", "task_name"]
