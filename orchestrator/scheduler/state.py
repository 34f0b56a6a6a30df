"""The scheduler's state of one job: loops, open iterations and node runs.

Plain slotted classes, mutated only by the scheduler. Everything in them is
derived from the plan and the events the scheduler was given, so replaying
the same events gives the same state.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from orchestrator.planner.plan import LoopPlan, Plan, PlannedNode
from orchestrator.states import DesiredLoopState, JobStatus, LoopStatus, RunStatus


class RunState:
    """One node run inside a stage (an iteration, the main stage or a group item)."""

    __slots__ = (
        "attempt",
        "children",
        "deadline",
        "dispatched_at",
        "error",
        "finished_at",
        "node",
        "outputs",
        "path",
        "pending",
        "run_id",
        "stage",
        "started_at",
        "status",
        "traceback",
        "waiters",
        "worker",
    )

    def __init__(self, node: PlannedNode, stage: Stage) -> None:
        self.node = node
        self.stage = stage
        self.path = stage.path_prefix + node.id  # ``group.k.node`` inside a group
        self.run_id = stage.run_prefix + self.path
        self.status = RunStatus.QUEUED
        self.attempt = 0
        self.pending = 0  # upstream runs (and feedback sources) not finished yet
        self.outputs: dict[str, Any] | None = None
        self.error: str | None = None
        self.traceback: str | None = None  # of the failure ``error`` names, when it raised
        self.deadline: float | None = None
        self.dispatched_at = 0.0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.worker: str | None = None
        self.waiters: list[RunState] | None = None  # next iteration's feedback targets
        self.children: GroupState | None = None


class Stage:
    """One dataflow execution of a set of nodes: an iteration or a group item."""

    __slots__ = (
        "delivery",
        "failed",
        "feedback",
        "index",
        "item",
        "loop",
        "open_blocking",
        "open_detached",
        "parent",
        "path_prefix",
        "plan",
        "run_prefix",
        "runs",
    )

    def __init__(
        self,
        loop: LoopState,
        index: int,
        plan: Plan,
        run_prefix: str,
        parent: RunState | None = None,
        item: int = 0,
    ) -> None:
        self.loop = loop
        self.index = index  # the loop iteration (0 in the main stage)
        self.plan = plan  # the plan whose nodes run here (a sub-plan in a group)
        self.run_prefix = run_prefix
        self.parent = parent  # the Group run this stage is an item of, if any
        self.item = item  # the item's position in its group
        self.path_prefix: str = f"{parent.path}.{item}." if parent is not None else ""
        self.runs: dict[str, RunState] = {}
        self.open_blocking = 0
        self.open_detached = 0
        self.failed = False
        self.delivery: str | None = None
        # (target, port) -> the value its feedback edge carries into this iteration:
        # the source's output in the latest earlier iteration that gave one.
        self.feedback: dict[tuple[str, str], Any] = {}


class GroupState:
    """The items of one ``Group`` run, each a stage of the sub-plan."""

    __slots__ = ("error", "items", "next", "open", "plan", "results")

    def __init__(self, plan: Plan, items: list[Any]) -> None:
        self.plan = plan
        self.items = items
        self.results: list[Any] = [None] * len(items)
        self.next = 0  # the next item to start (``max_parallel`` limits how many run)
        self.open = len(items)  # items not finished yet
        self.error: str | None = None


class LoopState:
    """One loop (or the main stage) of a job."""

    __slots__ = (
        "backlog",
        "completed",
        "current",
        "cursor",
        "desired",
        "detached_inflight",
        "ending",
        "exhausted",
        "failed",
        "feedback",
        "idle_since",
        "is_main",
        "name",
        "next_iteration",
        "open",
        "outputs",
        "plan",
        "previous",
        "producing",
        "status",
        "until_met",
    )

    def __init__(self, plan: LoopPlan) -> None:
        self.plan = plan
        self.is_main = plan.producer is None  # the main stage (asked for every run)
        self.name = plan.name
        self.status = LoopStatus.PENDING
        self.desired = DesiredLoopState.RUNNING
        self.next_iteration = 0
        self.cursor: Any = None
        self.producing = False
        self.exhausted = False
        self.current: Stage | None = None  # the iteration the producer waits on
        self.open: dict[int, Stage] = {}  # iterations with runs still active
        self.previous: Stage | None = None  # the last iteration started, for feedback
        self.completed = 0
        self.failed = 0
        self.detached_inflight = 0
        self.backlog: deque[RunState] = deque()
        self.feedback: dict[tuple[str, str], Any] = {}
        self.outputs: dict[str, dict[int, Any]] = {}  # Output node -> iteration -> value
        self.idle_since: float | None = None
        self.ending: LoopStatus | None = None  # the end status, once no run is open
        self.until_met = False  # an iteration's `until` output was truthy: no next one


class JobState:
    """Everything the scheduler knows about one job."""

    __slots__ = (
        "active",
        "cancelled",
        "error",
        "health",
        "inputs",
        "job_id",
        "loops",
        "main",
        "main_outputs",
        "plan",
        "status",
        "timers",
    )

    def __init__(self, job_id: str, plan: Plan, inputs: dict[str, Any]) -> None:
        self.job_id = job_id
        self.plan = plan
        self.inputs = inputs
        self.status = JobStatus.PENDING
        self.main = LoopState(plan.main)
        self.loops = {name: LoopState(loop) for name, loop in plan.loops.items()}
        self.main_outputs: dict[str, dict[str, Any]] = {}
        self.active: dict[str, RunState] = {}  # run id -> dispatched or waiting run
        self.timers: list[tuple[float, int, str, int]] = []  # (due, seq, run id, attempt)
        self.error: str | None = None
        self.cancelled = False

    def all_loops(self) -> list[LoopState]:
        """The main stage, then every loop."""
        return [self.main, *self.loops.values()]

    def loop(self, name: str) -> LoopState:
        """The loop called ``name``; raises ``KeyError`` naming the known loops."""
        if name == self.main.name:
            return self.main
        try:
            return self.loops[name]
        except KeyError:
            known = ", ".join(s.name for s in self.all_loops())
            raise KeyError(f"job {self.job_id} has no loop {name!r}; loops: {known}") from None

    def add_timer(self, due: float, run: RunState) -> None:
        """Wake ``run``'s current attempt at ``due``."""
        heapq.heappush(self.timers, (due, len(self.timers), run.run_id, run.attempt))

    def next_deadline(self) -> float | None:
        """The earliest retry or timeout due, for the driver's next ``Tick``."""
        return self.timers[0][0] if self.timers else None
