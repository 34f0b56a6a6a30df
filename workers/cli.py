"""``segue worker``: added to the ``segue`` command through the ``segue.cli`` entry point."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.output import EXIT_INVALID, fail
from workers.bootstrap import CELERY_POOLS, WorkerOptions, run_worker


def worker(
    pool: Annotated[str, typer.Option(help="thread, asyncio or process")] = "thread",
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues (default: the pool's name)")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Parallel task slots", min=1)] = None,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="Serve the gpu queue, one task per GPU")
    ] = False,
    metrics_port: Annotated[
        int,
        typer.Option(
            help="Serve this worker's own Prometheus /metrics (runs in progress, GPU memory) "
            "on this port; 0: off",
            min=0,
            max=65535,
        ),
    ] = 0,
) -> None:
    """Run a Celery worker that executes node runs for the pool it serves.

    Exits 0 when stopped (SIGTERM, Ctrl-C), non-zero when it stopped on an error.
    """
    from workers.metrics import MetricsPortUnavailable  # prometheus_client, only when run

    if pool not in CELERY_POOLS:
        fail(f"unknown pool {pool!r}; pools are: {', '.join(CELERY_POOLS)}", EXIT_INVALID)
    names = tuple(q.strip() for q in (queues or "").split(",") if q.strip())
    options = WorkerOptions(
        pool=pool, queues=names, concurrency=concurrency, gpu=gpu, metrics_port=metrics_port
    )
    try:
        code = run_worker(options)
    except MetricsPortUnavailable as exc:
        fail(str(exc), EXIT_INVALID)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the worker command to the ``segue`` CLI."""
    app.command("worker")(worker)
