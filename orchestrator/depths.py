"""How many messages wait in a cluster's queues, read from the broker.

One reader for ``segue queues`` and the coordinator's metrics, over three
kinds of queue:

* Celery task queues (``thread``, ``process``, ``gpu``, a node's own
  ``queue``): tasks no worker has taken yet, by a passive declaration (Redis:
  the lengths of the queue's lists, RabbitMQ: the queue's ready messages);
* queue-node queues (DESIGN 3.5), per reader group, through the queue backend;
* results queues: results waiting for the coordinator, per job.

It opens broker connections of its own, so a reader never contends with the
coordinator's consumers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Protocol, Self

from orchestrator.broker import REDIS_SCHEMES, retry_call, scheme
from orchestrator.channels import Channels
from orchestrator.queues import KombuQueueBackend, QueueBackend
from orchestrator.queues.kombu_session import BrokerSession
from orchestrator.store.base import ProcessRecord

TASK_QUEUES = ("thread", "asyncio", "process", "gpu")
"""The Celery task queues of the pools and of GPU nodes (DESIGN 3.10, 3.11)."""


def task_queue_names(processes: Iterable[ProcessRecord], *routes: str) -> list[str]:
    """The task queues worth measuring: the pools' and GPU queues, every queue a
    worker announced it consumes (alive or not), and ``routes`` (queues runs go to)."""
    announced = {q for p in processes if p.kind == "worker" for q in p.queues}
    return sorted({*TASK_QUEUES, *announced, *routes})


class _Closable(Protocol):
    def close(self) -> None: ...


class TaskQueueCounter:
    """Counts the tasks waiting in Celery task queues, on a connection of its own."""

    def __init__(self, broker_url: str) -> None:
        # Default transport options: on Redis the count covers every priority list.
        self._session = BrokerSession(broker_url, {}, virtual=scheme(broker_url) in REDIS_SCHEMES)

    def __call__(self, name: str) -> int:
        """Tasks waiting in queue ``name``; 0 when the broker has no such queue."""
        session = self._session
        with session.lock:
            return retry_call(lambda: session.count(name) or 0, session.errors, self._reset)

    def waiting(self, name: str) -> set[str] | None:
        """The ids of the tasks waiting in queue ``name`` (a Segue task's id is its
        run id); ``None`` on RabbitMQ, whose queues are not read without taking,
        or when the broker is away."""
        session = self._session
        if not session.virtual:
            return None

        def read() -> set[str]:
            channel = session.probe()
            ids: set[str] = set()
            for pri in channel.priority_steps:
                for raw in channel.client.lrange(channel._q_for_pri(name, pri), 0, -1):
                    if (task := _task_id(raw)) is not None:
                        ids.add(task)
            return ids

        with session.lock:
            try:
                return read()
            except session.errors as exc:  # asked again at the next check, not retried here
                self._reset(exc)
                return None

    def _reset(self, error: BaseException) -> None:
        self._session.reset()

    def close(self) -> None:
        """Close the connection."""
        with self._session.lock:
            self._session.close()


def _task_id(raw: bytes | str) -> str | None:
    """The id in a Celery task message's headers, ``None`` for anything else."""
    try:
        message = json.loads(raw)
        task = message["headers"]["id"]
    except (ValueError, TypeError, KeyError):
        return None
    return task if isinstance(task, str) else None


class BrokerDepths:
    """Queue depths of the three kinds of queue.

    Args:
        queues: The queue-node backend (its own instance: see the module docstring).
        channels: The coordinator's channels, for results queues.
        tasks: Counts one Celery task queue (``None``: no task queues, e.g. in memory).
        owned: Closed by :meth:`close` (what :meth:`open` made).
    """

    def __init__(
        self,
        queues: QueueBackend,
        channels: Channels,
        tasks: Callable[[str], int] | None = None,
        owned: Iterable[_Closable] = (),
    ) -> None:
        self._queues = queues
        self._channels = channels
        self._tasks = tasks
        self._owned = list(owned)

    @classmethod
    def open(cls, broker_url: str, visibility_timeout_s: float) -> Self:
        """Readers on new connections to ``broker_url`` (Redis or RabbitMQ).

        Raises:
            ValueError: ``broker_url`` is not a broker URL.
        """
        queues = KombuQueueBackend(broker_url, visibility_timeout_s=visibility_timeout_s)
        channels = Channels(broker_url)
        tasks = TaskQueueCounter(broker_url)
        return cls(queues, channels, tasks, owned=(queues, channels, tasks))

    def task_queues(self, names: Iterable[str]) -> dict[str, int]:
        """Tasks waiting, per Celery task queue (a queue never used counts 0)."""
        count = self._tasks
        return {} if count is None else {name: count(name) for name in names}

    def node_queues(self) -> dict[str, dict[str, int]]:
        """Every queue-node queue the broker lists, with the depth of each group
        (on RabbitMQ only the groups this reader knows; see
        :class:`~orchestrator.queues.KombuQueueBackend`)."""
        return self._queues.queues()

    def node_queue(self, key: str, group: str | None = None) -> int:
        """Messages waiting in one queue-node queue (``key``: see
        :func:`~orchestrator.queues.queue_key`) for ``group``, or in its
        fullest group; works on every broker when ``group`` is given."""
        return self._queues.depth(key, group)

    def results(self, job_ids: Iterable[str]) -> dict[str, int]:
        """Results waiting for the coordinator, per results queue of these jobs."""
        return self._channels.depth(job_ids)

    def close(self) -> None:
        """Close the connections :meth:`open` made."""
        for thing in self._owned:
            thing.close()
