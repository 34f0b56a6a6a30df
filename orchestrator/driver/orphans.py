"""What a job's dead driver held of its queues, settled when the job is taken over.

A driver acknowledges a queue message once its journal holds the iteration
that consumed it (:meth:`~orchestrator.driver.applier.Applier`); a driver that
dies leaves unacknowledged the messages of its open iterations, and of those
whose acknowledgement it had not sent yet. The driver taking the job over
looks them up before replaying the journal (:meth:`QueueBackend.orphans`),
notes which of them the journal shows consumed while it replays, and then
settles them (:meth:`QueueBackend.reclaim`): a consumed one is acknowledged,
since the replayed iteration holds its value (given back, it would be consumed
twice); any other goes back to the head of its group, oldest first, to be
received again in the order it was published. On a shared (``scope:
global``) queue the other holders may be readers of other jobs, alive: its
orphans are only acknowledged, unless no other driver is alive (then they are
all the dead ones'), else the broker gives them back after its visibility
timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from orchestrator.driver.journal import INPUT_KIND, events_of
from orchestrator.planner import Plan
from orchestrator.queues import QueueBackend, queue_key
from orchestrator.queues.base import message_id
from orchestrator.results import RunResult
from orchestrator.store.base import EventRecord


@dataclass
class _Subscription:
    queue: str
    group: str
    shared: bool
    orphans: set[str]
    consumed: set[str] = field(default_factory=set)


class Orphans:
    """The unacknowledged messages of one job's reader groups that no longer have a
    reader (looked up when built: before the job's readers receive again)."""

    def __init__(
        self, job_id: str, plan: Plan, queues: QueueBackend, alone: Callable[[], bool]
    ) -> None:
        """``alone()`` tells whether no other driver is alive (see the module)."""
        self._queues = queues
        self._alone = alone
        subscriptions: dict[tuple[str, str], _Subscription] = {}
        self._by_loop: dict[str, _Subscription] = {}
        for planned in plan.queues.values():
            for reader in planned.readers:
                key = (queue_key(job_id, planned.name, planned.scope), reader.group or reader.loop)
                subscription = subscriptions.get(key)
                if subscription is None:
                    orphans = set(queues.orphans(*key))
                    subscription = _Subscription(*key, planned.scope != "job", orphans)
                    subscriptions[key] = subscription
                self._by_loop[reader.loop] = subscription
        self._subscriptions = list(subscriptions.values())

    def __bool__(self) -> bool:
        return any(s.orphans for s in self._subscriptions)

    def noting(self, journal: Iterable[EventRecord]) -> Iterator[EventRecord]:
        """The journal, unchanged, noting each orphan a reader's journaled result consumed."""
        watched = {loop: s for loop, s in self._by_loop.items() if s.orphans}
        for record in journal:
            if watched and record.kind == INPUT_KIND:
                for event in events_of(record):
                    if not isinstance(event, RunResult) or event.delivery is None:
                        continue
                    subscription = watched.get(event.run_id.split(":", 2)[1])
                    received = message_id(event.delivery)
                    if subscription is not None and received in subscription.orphans:
                        subscription.consumed.add(received)
            yield record

    def reclaim(self) -> tuple[int, int]:
        """Acknowledge the orphans the journal consumed, give the others back.

        Returns how many were acknowledged and how many given back."""
        acknowledged = given = 0
        alone: bool | None = None
        for s in self._subscriptions:
            if not s.orphans:
                continue
            give_back = not s.shared
            if s.shared and s.orphans - s.consumed:
                alone = self._alone() if alone is None else alone
                give_back = alone
            given += self._queues.reclaim(s.queue, s.group, s.consumed, give_back)
            acknowledged += len(s.consumed)
        return acknowledged, given
