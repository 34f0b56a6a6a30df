"""The coordinator's queues on the broker: one results queue per job, and wake-ups.

Workers publish each run's result (and a node's progress events) to its job's
results queue, ``segue.results.<job>``; the coordinator driving the job reads
it. A result stays on the broker until the coordinator has journaled it
(:meth:`Channels.done`), so a coordinator that dies loses none: the one that
takes the job over reads what is left (:meth:`Channels.follow` returns it)
before it sends again the runs still in flight. The queue is deleted when
the job ends (:meth:`Channels.forget`).

Clients publish a wake-up to ``segue.control`` after writing a request (a
submitted job, a desired loop state, a cancel) to the store, which stays the
source of truth; every coordinator gets every wake-up, and a lost one is
covered by the coordinators' periodic scan of the store.

While the broker is away, a result that cannot be published is kept in memory
(bounded) and published, in order, when it returns (:class:`~orchestrator.outage.Outbox`);
a wake-up that cannot be sent is dropped (the store holds the request, and the
coordinators' scan finds it).

On Redis the queues are streams (``XADD``; a job's results are read with
``XREAD`` in batches and deleted once journaled); on RabbitMQ, durable queues
acknowledged once journaled, and a fanout exchange for wake-ups; in memory
(``memory://``), the same semantics inside one process, for tests and for
running the coordinator and its workers without services.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from orchestrator.broker import REDIS_SCHEMES, redact, scheme
from orchestrator.channels.base import (
    CONTROL_QUEUE,
    RESULTS_QUEUE,
    Body,
    ControlHandler,
    Delivery,
    ResultsHandler,
    Transport,
)
from orchestrator.channels.memory import MEMORY_SCHEME, MemoryTransport
from orchestrator.errors import BrokerUnavailable
from orchestrator.outage import Outbox, watch

log = logging.getLogger("segue.broker")
FLUSH_AT_CLOSE_S = 10.0
"""How long closing waits for kept results to reach a broker that is away."""
Kept = tuple[str, Body]
"""A result waiting for the broker: its queue and body."""


class Channels:
    """Publishing to, and consuming from, the coordinator's queues.

    Publishing and :meth:`done` are safe from any thread. Consuming is for one
    thread: call :meth:`consume` once, then :meth:`follow`, :meth:`forget` and
    :meth:`drain` from that thread.

    Args:
        url: The broker URL (``redis://``/``rediss://``, ``memory://name``, or
            any kombu URL such as ``amqp://``).
        prefix: Put before every queue name (tests share one broker).
    """

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        self.prefix = prefix
        self.control = prefix + CONTROL_QUEUE
        self._transport = open_transport(url, self.control)
        self.outage = watch(f"the broker at {redact(url)}", log)
        self._outbox: Outbox[Kept] = Outbox(
            lambda kept: self._transport.publish_result(*kept),
            self.transient,
            self.outage,
            describe=_describe,
            size=lambda kept: len(json.dumps(kept[1], separators=(",", ":"), default=str)),
        )
        self._control_dropped = False

    def transient(self, error: BaseException) -> bool:
        """Whether ``error`` says the broker is away for now (try again later)."""
        return self._transport.transient(error)

    def results_queue(self, job_id: str) -> str:
        """The name of the queue that carries ``job_id``'s results."""
        return f"{self.prefix}{RESULTS_QUEUE}.{job_id}"

    def publish_result(self, job_id: str, body: Body) -> None:
        """Send a run result (or a node's progress event) to the job's coordinator.

        Nothing is kept for a job no coordinator follows any more (it ended).
        While the broker is away the result is kept and sent when it returns.

        Raises:
            BrokerUnavailable: The broker is away and the kept results reached their bound.
        """
        try:
            self._outbox.send((self.results_queue(job_id), body))
        except BrokerUnavailable:
            if "node_event" not in body:
                raise
            # A node's progress is live news: not worth sending its run again for.

    def publish_control(self, body: Body) -> None:
        """Wake every coordinator: something changed in the store.

        A wake-up the broker cannot take is dropped with a warning: the request
        is in the store, and every coordinator reads the store each second.
        """
        try:
            self._transport.publish_control(body)
        except Exception as exc:
            if not self._transport.transient(exc):
                raise
            if not self._control_dropped:
                self._control_dropped = True
                log.warning(
                    "could not wake the coordinators through %s (%s); they find the "
                    "request in the store at their next scan",
                    self.outage.what,
                    exc,
                )
        else:
            self._control_dropped = False

    @property
    def kept(self) -> int:
        """Results waiting for the broker to return."""
        return self._outbox.kept

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for kept results to be sent; returns how many wait."""
        return self._outbox.flush(timeout)

    def consume(self, on_results: ResultsHandler, on_control: ControlHandler) -> None:
        """Start consuming wake-ups; results arrive for the jobs followed."""
        self._transport.consume(on_results, on_control)

    def follow(self, job_id: str) -> list[Delivery]:
        """Start reading a job's results; returns those already waiting.

        The queue is created if it does not exist. What is returned is not
        handed to the results handler: the caller deals with it first (a
        coordinator taking a job over applies it before sending runs again).
        """
        return self._transport.follow(job_id, self.results_queue(job_id))

    def forget(self, job_id: str, *, delete: bool) -> None:
        """Stop reading a job's results; ``delete``: the job ended, drop its queue."""
        self._transport.forget(self.results_queue(job_id), delete)

    def done(self, job_id: str, tokens: Iterable[object]) -> None:
        """These results of the job are journaled: take them off the broker.

        Thread-safe; carried out by the consuming thread's next :meth:`drain`.
        """
        self._transport.done(self.results_queue(job_id), list(tokens))

    def release(self) -> None:
        """Carry out the releases :meth:`done` asked for (:meth:`drain` does it too)."""
        self._transport.release()

    def drain(self, timeout: float) -> int:
        """Deliver what is waiting, waiting up to ``timeout`` seconds for the first;
        returns how many messages were delivered."""
        return self._transport.drain(timeout)

    def depth(self, job_ids: Iterable[str]) -> dict[str, int]:
        """Results waiting, by results queue, for these jobs: on Redis those not yet
        journaled, on RabbitMQ those not yet delivered to the coordinator."""
        return self._transport.depth([self.results_queue(job) for job in job_ids])

    def close(self) -> None:
        """Send what is kept (waiting up to :data:`FLUSH_AT_CLOSE_S`), close the connections."""
        left = self._outbox.close(FLUSH_AT_CLOSE_S)
        if left:
            log.error(
                "%d run result(s) never reached %s (away for %.0f s); the coordinator sends "
                "those runs again when it finds them missing",
                left,
                self.outage.what,
                self.outage.down_for(),
            )
        self._transport.close()


def _describe(kept: Kept) -> str:
    queue, body = kept
    event = body.get("node_event")
    if isinstance(event, dict):
        return f"an event of run {event.get('run_id')}"
    run = body.get("run_id")
    return f"the result of run {run}" if run else f"a message to {queue}"


def open_transport(url: str, control: str) -> Transport:
    """The transport for ``url``: Redis streams, in memory, or kombu for any other URL.

    The Redis and kombu modules are imported here, when chosen: a client on a
    Redis broker never loads kombu. They import only :mod:`orchestrator.channels.base`.
    """
    kind = scheme(url)
    if kind == MEMORY_SCHEME:
        return MemoryTransport.shared(url, control)
    if kind in REDIS_SCHEMES:
        from orchestrator.channels.redis import RedisTransport

        return RedisTransport(url, control)
    from orchestrator.channels.kombu import KombuTransport

    return KombuTransport(url, control)
