"""A Celery app configured the way Segue needs it; workers add the node tasks.

Only JSON crosses the broker. Tasks are acknowledged late and rejected (so
redelivered) when their worker dies; execution is therefore at-least-once and
the store dedupes recording. The Redis transport redelivers an unacknowledged
task only after ``visibility_timeout``, so it must outlast the longest node.

A lost broker connection is retried, at start and later, with Celery's backoff
(``broker_connection_max_retries`` tries; a worker that gives up exits
non-zero). Tasks running when the connection drops run to their end: their
results wait in the worker's outbox for the broker
(:class:`~orchestrator.channels.Channels`), and their deliveries, which can no
longer be acknowledged, come again and are skipped as finished. On ``redis://``
the transport is kombu's with a guard for a reconnect bug
(:mod:`orchestrator.celery.transport`).
"""

from __future__ import annotations

from celery import Celery

from orchestrator.broker import scheme, tls_options
from orchestrator.settings import Settings

TASK_PREFIX = "segue.node."
DEAD_LETTER_QUEUE = "segue.dead"
"""Where workers move the messages on their queues they cannot run (see
:mod:`workers.deadletter`): read it with any consumer of the broker."""
REDIS_TRANSPORT = "orchestrator.celery.transport:Transport"
"""kombu's Redis transport with Segue's reconnect guard."""


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
        broker_connection_retry=True,
        # A running node is not killed when the connection drops: it finishes and
        # its result is kept until the broker is back. (Celery's default today;
        # said here because Celery 6 changes it.)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # After a reconnect Celery lowers the prefetch count and raises it again with
        # basic.qos calls chained on acknowledgements - made from the pool's threads,
        # on the consumer's AMQP connection, racing the event loop that reads it: the
        # worker stops taking tasks (seen here after RabbitMQ closed its connections;
        # celery/celery#9512 and #10253 give this setting as the way out). A worker
        # prefetches one task per slot anyway.
        worker_enable_prefetch_count_reduction=False,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_limit": settings.unacked_restore_limit,
        },
        enable_utc=True,
    )
    tls = tls_options(settings.broker_url)
    if tls is not None:
        app.conf.broker_use_ssl = tls
    if scheme(settings.broker_url) == "redis":
        app.conf.broker_transport = REDIS_TRANSPORT
    return app
