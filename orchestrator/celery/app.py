"""A Celery app configured the way Segue needs it; workers add the node tasks.

Only JSON crosses the broker. Tasks are acknowledged late and rejected (so
redelivered) when their worker dies; execution is therefore at-least-once and
the store dedupes recording. The Redis transport redelivers an unacknowledged
task only after ``visibility_timeout``, so it must outlast the longest node.
"""

from __future__ import annotations

from celery import Celery

from orchestrator.broker import tls_options
from orchestrator.settings import Settings

TASK_PREFIX = "segue.node."
DEAD_LETTER_QUEUE = "segue.dead"
"""Where workers move the messages on their queues they cannot run (see
:mod:`workers.deadletter`): read it with any consumer of the broker."""


def task_name(type_name: str) -> str:
    """The Celery task name of a node type: one task per type, so Flower shows work by type."""
    return f"{TASK_PREFIX}{type_name}"


def make_celery(settings: Settings, name: str = "segue") -> Celery:
    """A Celery app on ``settings.broker_url`` with Segue's delivery guarantees."""
    app = Celery(name, broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_default_queue="thread",
        task_create_missing_queues=True,
        task_track_started=False,
        worker_prefetch_multiplier=settings.worker_prefetch,
        worker_send_task_events=True,
        # No "task-sent" event per dispatch (Celery's default): Flower follows
        # each task from the worker's received/started/succeeded events, and a
        # sent event would cost the coordinator one more publish per run.
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_limit": settings.unacked_restore_limit,
        },
        enable_utc=True,
    )
    tls = tls_options(settings.broker_url)
    if tls is not None:
        app.conf.broker_use_ssl = tls
    return app
