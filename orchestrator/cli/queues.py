"""``segue queues``: the depths of a cluster's queues, read from the broker."""

from __future__ import annotations

import logging

from rich.table import Table

from orchestrator.broker import redact
from orchestrator.cli.common import BrokerOpt, DatabaseOpt, JsonOpt, settings_from
from orchestrator.cli.output import EXIT_FAILED, EXIT_INVALID, fail, out, print_json
from orchestrator.states import JobStatus


def queues(
    json_: JsonOpt = False, broker_url: BrokerOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Show queue depths: tasks waiting per Celery task queue, queue-node queues per
    reader group, and the results waiting for the coordinator, per running job."""
    from orchestrator.depths import BrokerDepths, task_queue_names
    from orchestrator.store import open_store
    from orchestrator.store.errors import StoreError

    settings = settings_from(broker_url, database_url)
    try:
        store = open_store(settings.database_url, settings.home)
        running = [job.id for job in store.list_jobs(JobStatus.RUNNING.value, limit=1000)]
        names = task_queue_names(store.list_processes())
        store.close()
    except StoreError as exc:
        fail(f"{exc}\nCheck SEGUE_DATABASE_URL or --database-url.", EXIT_FAILED)
    # The backend logs a broker error with its traceback before it retries: right
    # for a service's log; here the failure is reported below, once.
    logging.getLogger("orchestrator.queues").setLevel(logging.CRITICAL)
    try:
        depths = BrokerDepths.open(settings.broker_url, settings.visibility_timeout_s)
    except ValueError as exc:  # not a broker URL
        fail(f"{exc}; check SEGUE_BROKER_URL or --broker-url", EXIT_INVALID)
    try:
        tasks = depths.task_queues(names)
        listing = depths.node_queues()
        results = depths.results(running)
    except Exception as exc:  # each transport raises its own errors when the broker is away
        fail(
            f"cannot read queue depths from the broker at {redact(settings.broker_url)} "
            f"({type(exc).__name__}: {exc}); check SEGUE_BROKER_URL or --broker-url",
            EXIT_FAILED,
        )
    finally:
        depths.close()
    if json_:
        print_json({"tasks": tasks, "queues": listing, "results": results})
        return
    waiting_tasks = Table(title="Tasks waiting for a worker")
    waiting_tasks.add_column("queue")
    waiting_tasks.add_column("depth", justify="right")
    for name, depth in tasks.items():
        waiting_tasks.add_row(name, str(depth))
    out.print(waiting_tasks)
    table = Table(title="Queue-node queues")
    for column in ("job", "queue", "group", "depth"):
        table.add_column(column, justify="right" if column == "depth" else "left")
    for name, groups in listing.items():
        job, _, queue = name.rpartition(":")
        for group, depth in groups.items() or [("-", 0)]:
            table.add_row(job or "[dim]global[/dim]", queue, group, str(depth))
    out.print(table if listing else "[dim]no queue-node queues[/dim]")
    waiting = Table(title="Results waiting for the coordinator")
    waiting.add_column("queue")
    waiting.add_column("depth", justify="right")
    for name, depth in results.items():
        waiting.add_row(name, str(depth))
    out.print(waiting if results else "[dim]no running jobs[/dim]")
