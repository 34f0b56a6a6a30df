"""``segue coordinator``: the service that drives submitted jobs."""

from __future__ import annotations

import logging
import signal
from types import FrameType


def coordinator() -> None:
    """Run the coordinator until SIGTERM or Ctrl-C (connections come from SEGUE_* settings)."""
    from orchestrator.coordinator import Coordinator  # Celery and kombu, only when used

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    service = Coordinator()

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
