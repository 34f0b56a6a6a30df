"""What a driver takes in: each input is a frozen dataclass, handled by one ``match``.

The driver's thread owns every job's scheduler; everything else (pools,
clients, the broker consumer, the steward) talks to it only by putting one
of these in its inbox.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.results import RunResult
from orchestrator.scheduler.commands import Dispatch
from orchestrator.scheduler.events import Event
from orchestrator.store.base import JobRecord


@dataclass(frozen=True, slots=True)
class Schedule:
    """A scheduler event for one job: a start, a control request, a cancel, a resend."""

    job_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class Results:
    """Finished runs, from the pools or reported over the broker.

    ``on_journaled`` is called once they (and the runs' ends) are in the store,
    if their jobs are still driven here: the coordinator then takes them off
    the broker.
    """

    results: list[RunResult]
    on_journaled: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """Dispatches held until the journal held the queue messages they were decided
    on (see :class:`~orchestrator.driver.Driver`'s ``journal_first``): send them now."""

    job_id: str
    dispatches: tuple[Dispatch, ...]


@dataclass(frozen=True, slots=True)
class NodeReport:
    """A running node reported progress or a preview."""

    run_id: str
    kind: str
    data: Any


@dataclass(frozen=True, slots=True)
class Adopt:
    """Drive a job found in the store: start it, or rebuild it from its journal.

    ``backlog`` holds results reported for it and not yet journaled (left on
    the broker by a coordinator that died); ``on_journaled`` releases them.
    """

    record: JobRecord
    backlog: list[RunResult] = field(default_factory=list)
    on_journaled: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Chase the runs dispatched over ``older_than_s`` ago that never reported."""

    older_than_s: float


@dataclass(frozen=True, slots=True)
class Chase:
    """Runs of a job that no live worker will report (:mod:`orchestrator.liveness`):
    answer them from the store if they finished, else send them again."""

    job_id: str
    run_ids: frozenset[str]
    reason: str


@dataclass(frozen=True, slots=True)
class Inspect:
    """Read every job's scheduler on the driver's thread: ``reply`` gets a dict of
    job id to ``read(scheduler)``."""

    read: Callable[[Any], Any]
    reply: queue.SimpleQueue[Any]


@dataclass(frozen=True, slots=True)
class Flush:
    """Write buffered loop rows now, then set ``done``."""

    done: threading.Event


@dataclass(frozen=True, slots=True)
class Stop:
    """End the driver's thread."""


Input = (
    Schedule | Results | Release | NodeReport | Adopt | Reconcile | Chase | Inspect | Flush | Stop
)
