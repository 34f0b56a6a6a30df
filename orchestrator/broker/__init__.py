"""The broker side of distributed mode: the Celery app's configuration, task
names, and the queues that carry completions and wake-ups to the coordinator."""

from orchestrator.broker.celery_app import make_celery, task_name
from orchestrator.broker.channels import CONTROL_QUEUE, RESULTS_QUEUE, Channels

__all__ = ["CONTROL_QUEUE", "RESULTS_QUEUE", "Channels", "make_celery", "task_name"]
