"""Node health in a job: one pure function over its recorded runs.

Every surface (the embedded client, the cluster client, ``segue nodes health``,
metrics, the operations page) asks :func:`node_health` with the runs the store
holds, so they cannot disagree. A run row keeps its latest attempt; the
attempts before it all failed (a retry follows only a failure), so a row says
how many attempts failed and how the last one ended:

- ``succeeded``/``cached``: ``attempt - 1`` failures, then a success;
- ``failed``/``retrying``: ``attempt`` failures (the latest is the row's error);
- ``queued``/``running``/``skipped``/``cancelled``: ``attempt - 1`` failures and
  no outcome of its own.

A node is ``retrying`` while one of its runs waits for a retry, ``failing``
when its last outcome failed or more than half of its last :data:`WINDOW`
outcomes failed, else ``healthy``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from orchestrator.states import Health, RunStatus

WINDOW = 20
"""How many of a node's latest attempt outcomes its error rate looks at."""

_SUCCESS = frozenset({RunStatus.SUCCEEDED.value, RunStatus.CACHED.value})
_FAILURE = frozenset({RunStatus.FAILED.value, RunStatus.RETRYING.value})


class RecordedRun(Protocol):
    """What health reads of a recorded run (a ``RunInfo`` or a store row)."""

    @property
    def node(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def finished_at(self) -> float | None: ...


class _Tally:
    __slots__ = ("failed", "recent", "retrying", "succeeded")

    def __init__(self) -> None:
        self.succeeded = 0
        self.failed = 0
        self.retrying = 0
        self.recent: deque[bool] = deque(maxlen=WINDOW)

    def add(self, failed: bool, times: int = 1) -> None:
        for _ in range(min(times, WINDOW)):
            self.recent.append(failed)
        if failed:
            self.failed += times
        else:
            self.succeeded += times

    def report(self) -> dict[str, Any]:
        recent = self.recent
        error_rate = sum(recent) / len(recent) if recent else 0.0
        if self.retrying:
            health = Health.RETRYING
        elif recent and (recent[-1] or error_rate > 0.5):
            health = Health.FAILING
        else:
            health = Health.HEALTHY
        return {
            "health": health.value,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "error_rate": round(error_rate, 3),
        }


def node_health(runs: Iterable[RecordedRun]) -> dict[str, dict[str, Any]]:
    """Per node id: ``health`` (healthy, retrying, failing), ``succeeded`` and
    ``failed`` attempt counts, and ``error_rate`` over the last :data:`WINDOW`
    outcomes. Nodes with no run yet are absent."""
    tallies: dict[str, _Tally] = {}
    ordered = sorted(runs, key=lambda run: (run.finished_at is None, run.finished_at or 0.0))
    for run in ordered:
        tally = tallies.get(run.node)
        if tally is None:
            tally = tallies[run.node] = _Tally()
        status = run.status
        if status in _FAILURE:
            tally.add(True, run.attempt)
            if status == RunStatus.RETRYING.value:
                tally.retrying += 1
            continue
        if run.attempt > 1:
            tally.add(True, run.attempt - 1)
        if status in _SUCCESS:
            tally.add(False)
    return {node: tally.report() for node, tally in tallies.items()}
