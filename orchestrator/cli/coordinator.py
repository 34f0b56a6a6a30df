"""``segue coordinator``: the service that drives submitted jobs."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer


def coordinator(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus /metrics on this port (0: off) "
            "[default: SEGUE_METRICS_PORT, else 9464]",
            min=0,
            max=65535,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the coordinator until SIGTERM or Ctrl-C (connections come from SEGUE_* settings)."""
    # Celery, kombu and prometheus_client, only when used.
    from orchestrator.coordinator import Coordinator
    from orchestrator.metrics import serve_metrics
    from orchestrator.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings() if metrics_port is None else Settings(metrics_port=metrics_port)
    service = Coordinator(settings)
    metrics = serve_metrics(service.store, settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        service.run()
    finally:
        if metrics is not None:
            metrics.close()
