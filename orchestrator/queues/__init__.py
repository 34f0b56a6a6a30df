"""Queue backends for queue nodes: in-process here, the broker in distributed mode."""

from orchestrator.queues.base import Message, QueueBackend, queue_key
from orchestrator.queues.kombu_backend import KombuQueueBackend
from orchestrator.queues.memory import MemoryQueueBackend

__all__ = ["KombuQueueBackend", "MemoryQueueBackend", "Message", "QueueBackend", "queue_key"]
