"""The coordinator's channels: a results queue per job, and wake-ups to every coordinator.

:class:`Channels` names the queues and delegates to a :class:`Transport`
chosen by the broker URL: Redis streams (``redis://``), kombu (``amqp://`` and
any other kombu URL) or process memory (``memory://name``).
"""

from orchestrator.channels.base import (
    CONTROL_QUEUE,
    RESULTS_QUEUE,
    Body,
    ControlHandler,
    Delivery,
    ResultsHandler,
    Transport,
)
from orchestrator.channels.channels import Channels, open_transport
from orchestrator.channels.memory import MemoryBroker, MemoryTransport

__all__ = [
    "CONTROL_QUEUE",
    "RESULTS_QUEUE",
    "Body",
    "Channels",
    "ControlHandler",
    "Delivery",
    "MemoryBroker",
    "MemoryTransport",
    "ResultsHandler",
    "Transport",
    "open_transport",
]
