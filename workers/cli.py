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
        bool,
        typer.Option("--gpu", help="Serve the gpu queue: one process per GPU, one task per GPU"),
    ] = False,
    gpus: Annotated[
        str | None,
        typer.Option(help="With --gpu: the devices to serve, e.g. 0,2 (default: every GPU)"),
    ] = None,
    gpu_share: Annotated[
        bool,
        typer.Option(
            "--gpu-share",
            help="With --gpu: run runs side by side on a GPU while their declared vram_mb fits",
        ),
    ] = False,
    gpu_reserve_mb: Annotated[
        int,
        typer.Option(help="With --gpu: GPU memory (MiB) kept out of admission", min=0),
    ] = 1024,
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
    from workers.gpu.devices import NoGpu, parse_selection
    from workers.gpu.launch import run_gpu_worker
    from workers.gpu.supervisor import CudaStartedInParent
    from workers.metrics import MetricsPortUnavailable  # prometheus_client, only when run

    if pool not in CELERY_POOLS:
        fail(f"unknown pool {pool!r}; pools are: {', '.join(CELERY_POOLS)}", EXIT_INVALID)
    if not gpu and (gpus is not None or gpu_share):
        fail("--gpus and --gpu-share apply to GPU workers; add --gpu", EXIT_INVALID)
    names = tuple(q.strip() for q in (queues or "").split(",") if q.strip())
    try:
        options = WorkerOptions(
            pool=pool,
            queues=names,
            concurrency=concurrency,
            gpu=gpu,
            metrics_port=metrics_port,
            gpus=parse_selection(gpus) if gpus is not None else None,
            gpu_share=gpu_share,
            gpu_reserve_mb=gpu_reserve_mb,
        )
        code = run_gpu_worker(options) if gpu else run_worker(options)
    except (MetricsPortUnavailable, NoGpu, CudaStartedInParent) as exc:
        fail(str(exc), EXIT_INVALID)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the worker command to the ``segue`` CLI."""
    app.command("worker")(worker)
