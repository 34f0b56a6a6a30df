"""In-flight run states: a run shows ``queued`` and ``running`` while it is, once
it has been so for a moment (DESIGN section 4, States).

Writing two more rows per run would cost the recording path more than most
runs take, and nobody could watch a run done in milliseconds. So nothing is
written for short runs: an :class:`InFlight` notes each run as it is handed
to a pool (``queued``) and as a pool thread starts it (``running``) - a dict
store each, no lock - and a thread looks a few times per ``delay_s`` for runs
in a state longer than ``delay_s``, and reports them (as a node event of kind
:data:`IN_FLIGHT_EVENT`) to whoever keeps them: the driver writes the rows
with conditional updates (never over a finished run, see :func:`keep_in_flight`)
and their events, in one transaction per look. Celery workers do the same for
``running`` with their delayed claims (:mod:`workers.claims`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from nodes.ids import RunId
from orchestrator.scheduler.commands import Dispatch
from orchestrator.store.base import EventRecord, RunRecord, Store

IN_FLIGHT_EVENT = "in_flight"
"""The node-event kind in-flight states travel as: one report per look, under the
run id :data:`SEVERAL_RUNS`, its data a list of ``(run id, state)``."""
SEVERAL_RUNS = "*"
"""The run id of a report about the runs its data names."""
log = logging.getLogger("segue.engine")
IN_FLIGHT_S = 0.25
"""The default delay: a run shows queued or running once it has been so this long."""
LOOKS_PER_DELAY = 4

Report = Callable[[str, str, Any], None]  # (run id, kind, data): a runner's on_event


class InFlight:
    """Notes runs handed to pools and started, and reports those in a state for
    longer than ``delay_s``.

    Args:
        report: Receives ``(run_id, IN_FLIGHT_EVENT, data)`` from the thread.
        delay_s: How long a run is queued or running before it is reported
            (0: never reported).
        worker: The name a running run is reported with.
    """

    def __init__(self, report: Report, delay_s: float, worker: str | None = None) -> None:
        self.report = report
        self.delay_s = delay_s
        self.worker = worker
        self._queued: dict[str, tuple[Dispatch, float]] = {}
        self._running: dict[str, tuple[Dispatch, float]] = {}
        self._said: dict[str, str] = {}  # run id -> the state last reported
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # the pools' side: cheap ---------------------------------------------------------
    def queued(self, dispatch: Dispatch) -> None:
        """``dispatch`` was handed to a pool (a producer's call is not noted: one
        that finds its source exhausted or empty is no run, and is never recorded)."""
        if self.delay_s and dispatch.kind != "produce":
            self._queued[dispatch.run_id] = (dispatch, time.monotonic())
            if self._thread is None:
                self._start()

    def started(self, run_id: str, dispatch: Dispatch | None = None) -> None:
        """A pool began to run ``run_id`` (its dispatch, if it was not noted queued)."""
        if self.delay_s:
            noted = self._queued.pop(run_id, None)
            if noted is not None:
                dispatch = noted[0]
            if dispatch is not None and dispatch.kind != "produce":
                self._running[run_id] = (dispatch, time.monotonic())

    def ended(self, run_id: str) -> None:
        """The run ended (its result follows)."""
        if self.delay_s:
            self._queued.pop(run_id, None)
            self._running.pop(run_id, None)

    def close(self) -> None:
        """Stop the thread."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # the thread ---------------------------------------------------------------------
    def _start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="segue-in-flight", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        look = self.delay_s / LOOKS_PER_DELAY
        while not self._closed:
            self._wake.wait(look)
            self.look(time.monotonic())

    def look(self, now: float) -> None:
        """Report the runs in a state for over ``delay_s`` at ``now`` (monotonic),
        all in one report (their rows are written in one transaction)."""
        due = now - self.delay_s
        said = self._said
        states: list[tuple[str, dict[str, Any]]] = []
        for status, notes in (("queued", self._queued), ("running", self._running)):
            for run_id, (dispatch, since) in list(notes.items()):
                if since <= due and said.get(run_id) != status:
                    said[run_id] = status
                    states.append((run_id, self._state(dispatch, status, now - since)))
        live = self._queued.keys() | self._running.keys()
        for run_id in [r for r in said if r not in live]:
            del said[run_id]
        if states:
            try:
                self.report(SEVERAL_RUNS, IN_FLIGHT_EVENT, states)
            except Exception as exc:  # states not shown are no reason to stop looking
                log.warning("could not show %d runs in flight: %s", len(states), exc)

    def _state(self, dispatch: Dispatch, status: str, for_s: float) -> dict[str, Any]:
        """A run's state, with when it entered it (wall clock)."""
        return {
            "status": status,
            "attempt": dispatch.attempt,
            "type": dispatch.node.type_name,
            "queue": dispatch.node.route.queue,
            "worker": self.worker if status == "running" else None,
            "at": time.time() - for_s,
        }


def in_flight_record(run_id: str, data: dict[str, Any]) -> tuple[RunRecord, EventRecord]:
    """The run row and event of an in-flight report's data."""
    run = RunId.parse(run_id)
    status = str(data["status"])
    at = float(data["at"])
    record = RunRecord(
        run_id=run_id,
        job_id=run.job,
        loop=run.loop,
        iteration=run.iteration,
        node_id=run.node,
        type_name=str(data.get("type") or ""),
        status=status,
        attempt=int(data["attempt"]),
        queue=data.get("queue"),
        worker=data.get("worker"),
        queued_at=at if status == "queued" else None,
        started_at=at if status == "running" else None,
    )
    return record, in_flight_event(record, at)


def in_flight_event(record: RunRecord, at: float) -> EventRecord:
    """The job event saying a run is ``queued`` or ``running``."""
    return EventRecord(
        job_id=record.job_id,
        kind="run",
        at=at,
        loop=record.loop,
        iteration=record.iteration,
        node=record.node_id,
        run_id=record.run_id,
        status=record.status,
        data={"type": record.type_name, "attempt": record.attempt},
    )


def keep_in_flight(store: Store, states: list[tuple[str, dict[str, Any]]]) -> list[EventRecord]:
    """Write in-flight states, all in one transaction: each row only if the stored
    run is not finished (nor a newer attempt; a queued state not over any row of
    its attempt), with its event; the events of those written.

    Row and event go together: a coordinator's queued state and a worker's claim
    of the same run race, and an event appended after its row could land after
    the claim's, showing ``queued`` after ``running``.
    """
    pairs = [in_flight_record(run_id, data) for run_id, data in states]
    written = store.record_in_flight(pairs)
    return [event for (_, event), ok in zip(pairs, written, strict=True) if ok]
