"""Driving the pure scheduler by hand: compiled plans, a fake executor, a recorder.

The tests play the executor: every :class:`Dispatch` the scheduler returns is
answered with a :class:`RunResult`, either written out by the test or
computed here for the built-in node types, and time moves only when a test
moves it. Every ``(event, now)`` given to the scheduler is kept, so a test can
replay it into a fresh scheduler.
"""

from __future__ import annotations

import json
import operator
import textwrap
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from nodes.library import builtin_registry
from orchestrator import compile_workflow
from orchestrator.health import node_health
from orchestrator.model import Workflow
from orchestrator.planner import Plan
from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import (
    Ack,
    Command,
    Dispatch,
    Event,
    JobChanged,
    LoopChanged,
    Revoke,
    RunChanged,
    Scheduler,
    Start,
    Tick,
)

REGISTRY = builtin_registry()

_MATH: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
    "mod": operator.mod,
    "min": min,
    "max": max,
}

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}

C = TypeVar("C")

Behaviour = Callable[[Dispatch], "RunResult | dict[str, Any]"]
"""How a test overrides one node: a full result, or just the outputs of a success."""


def plan_of(text: str, loops: dict[str, dict[str, Any]] | None = None) -> Plan:
    """Compile a workflow written as (indented) YAML with the built-in registry;
    ``loops`` adds a ``loops:`` section (policies by producer id)."""
    text = textwrap.dedent(text)
    if loops:
        text += "loops:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in loops.items())
    return compile_workflow(Workflow.loads(text), REGISTRY)


def norm(command: Command) -> str:
    """A command as comparable text: plan objects are replaced by node ids."""
    if isinstance(command, Dispatch | RunChanged):
        fields = command._asdict()
        fields["node"] = command.node.id
        return f"{type(command).__name__}({fields!r})"
    return repr(command)


def brief(command: Command) -> tuple[Any, ...]:
    """A command as a short tuple of what a test usually checks.

    ``("dispatch", run id, attempt, inputs)`` (a produce adds its cursor),
    ``("run", run id, status)``, ``("loop", loop, status)``, ``("job", status)``,
    ``("revoke", run id, attempt)``, ``("ack", loop, delivery)``.
    """
    if isinstance(command, Dispatch):
        if command.kind == "produce":
            return ("produce", command.run_id, command.attempt, command.cursor)
        return ("dispatch", command.run_id, command.attempt, command.inputs)
    if isinstance(command, RunChanged):
        return ("run", command.run_id, command.status)
    if isinstance(command, LoopChanged):
        return ("loop", command.loop, command.status)
    if isinstance(command, JobChanged):
        return ("job", command.status)
    if isinstance(command, Revoke):
        return ("revoke", command.run_id, command.attempt)
    assert isinstance(command, Ack)
    return ("ack", command.loop, command.delivery)


def briefs(commands: Iterable[Command]) -> list[tuple[Any, ...]]:
    """:func:`brief` of each command."""
    return [brief(c) for c in commands]


def of_type(commands: Iterable[Command], kind: type[C]) -> list[C]:
    """The commands of one class, in order."""
    return [c for c in commands if isinstance(c, kind)]


def dispatched(commands: Iterable[Command]) -> list[str]:
    """Run ids of the dispatches among ``commands``, in order."""
    return [c.run_id for c in of_type(commands, Dispatch)]


def statuses(commands: Iterable[Command]) -> list[tuple[str, str]]:
    """``(run id, status)`` of every run change among ``commands``."""
    return [(c.run_id, c.status) for c in of_type(commands, RunChanged)]


def loop_statuses(commands: Iterable[Command], loop: str | None = None) -> list[str]:
    """The statuses loop changes report (of one loop, when given)."""
    return [c.status for c in of_type(commands, LoopChanged) if loop in (None, c.loop)]


def job_statuses(commands: Iterable[Command]) -> list[str]:
    """The statuses job changes report."""
    return [c.status for c in of_type(commands, JobChanged)]


class Driver:
    """One scheduler, the clock, and a fake executor for the built-in node types.

    Attributes:
        scheduler: The scheduler under test.
        now: The time the next event is given at.
        log: Every ``(event, now)`` the scheduler was given.
        steps: The commands each of those events returned.
        inflight: Run id -> the latest dispatch the executor has not answered.
        queues: Queue name -> every value pushed into it.
        behaviour: Node id -> an override of the fake executor.
    """

    def __init__(
        self,
        plan: Plan,
        inputs: dict[str, Any] | None = None,
        job_id: str = "j",
        behaviour: dict[str, Behaviour] | None = None,
    ) -> None:
        self.scheduler = Scheduler(job_id, plan, inputs)
        self.now = 0.0
        self.log: list[tuple[Event, float]] = []
        self.steps: list[list[Command]] = []
        self.inflight: dict[str, Dispatch] = {}
        self.queues: dict[str, list[Any]] = {}
        self.behaviour = dict(behaviour or {})

    # events ---------------------------------------------------------------------
    def send(self, event: Event, at: float | None = None) -> list[Command]:
        """Give ``event`` to the scheduler (at ``at``, else at ``now``)."""
        if at is not None:
            self.now = at
        if isinstance(event, RunResult):
            known = self.inflight.get(event.run_id)
            if known is not None and known.attempt == event.attempt:
                del self.inflight[event.run_id]
        self.log.append((event, self.now))
        commands = self.scheduler.handle(event, self.now)
        self.steps.append(commands)
        for command in commands:
            if isinstance(command, Dispatch):
                self.inflight[command.run_id] = command
            elif isinstance(command, Revoke):
                known = self.inflight.get(command.run_id)
                if known is not None and known.attempt == command.attempt:
                    del self.inflight[command.run_id]
        return commands

    def start(self) -> list[Command]:
        """Submit the job."""
        return self.send(Start())

    def tick(self, at: float) -> list[Command]:
        """Let time pass until ``at``."""
        return self.send(Tick(), at)

    def attempt(self, run_id: str) -> int:
        """The attempt of ``run_id`` the executor was last asked to run."""
        return self.inflight[run_id].attempt

    def succeed(
        self, run_id: str, outputs: dict[str, Any] | None = None, **fields: Any
    ) -> list[Command]:
        """Answer ``run_id``'s current attempt with a success."""
        return self.send(
            RunResult(run_id, self.attempt(run_id), "succeeded", outputs or {}, **fields)
        )

    def fail(
        self, run_id: str, error: str = "NodeError: boom", retryable: bool = True
    ) -> list[Command]:
        """Answer ``run_id``'s current attempt with a failure."""
        return self.send(
            RunResult(
                run_id, self.attempt(run_id), "failed", error=RunError.parse(error, retryable)
            )
        )

    def answer(self, run_id: str) -> list[Command]:
        """Answer ``run_id`` with what the fake executor computes for it."""
        return self.send(self.outcome(self.inflight[run_id]))

    # the fake executor ------------------------------------------------------------
    def outcome(self, d: Dispatch) -> RunResult:
        """What a run of a built-in type would report (or the test's override)."""
        override = self.behaviour.get(d.node.id)
        if override is not None:
            result = override(d)
            if isinstance(result, RunResult):
                return result
            return RunResult(d.run_id, d.attempt, "succeeded", result)
        if d.kind == "produce":
            return self._produce(d)
        config, inputs = d.node.config, d.inputs
        type_name = d.type_name
        if type_name == "Math":
            return self._ok(d, result=_MATH[config["op"]](inputs["a"], inputs["b"]))
        if type_name == "Format":
            return self._ok(
                d, text=config["template"].format(inputs["value"], value=inputs["value"])
            )
        if type_name == "Constant":
            return self._ok(d, value=config["value"])
        if type_name == "Compare":
            return self._ok(d, result=bool(_COMPARE[config["op"]](inputs["a"], inputs["b"])))
        if type_name == "Flaky":
            value = inputs.get("value")
            if d.attempt <= config.get("fail_times", 0) or value in config.get("fail_on", []):
                return RunResult(
                    d.run_id, d.attempt, "failed", error=RunError("NodeError", repr(value))
                )
            return self._ok(d, value=value)
        if type_name == "Sleep":
            return self._ok(d, value=inputs.get("value"))
        if type_name == "QueueWriter":
            self.queues.setdefault(config["queue"], []).append(inputs.get("value"))
        return self._ok(d)

    def _produce(self, d: Dispatch) -> RunResult:
        config, type_name = d.node.config, d.type_name
        if type_name == "Range":
            current = config.get("start", 0) if d.cursor is None else d.cursor
            if current >= config["stop"]:
                return RunResult(d.run_id, d.attempt, "succeeded", exhausted=True)
            return self._ok(d, cursor=current + config.get("step", 1), value=current)
        if type_name == "Count":
            current = config.get("start", 0) if d.cursor is None else d.cursor
            return self._ok(d, cursor=current + config.get("step", 1), value=current)
        if type_name == "Items":
            index = d.cursor or 0
            if index >= len(config["items"]):
                return RunResult(d.run_id, d.attempt, "succeeded", exhausted=True)
            return self._ok(d, cursor=index + 1, item=config["items"][index])
        assert type_name == "QueueReader", type_name
        name = config["queue"]
        messages = self.queues.get(name, [])
        index = d.cursor or 0
        if index < len(messages):
            return self._ok(d, cursor=index + 1, delivery=f"{name}#{index}", item=messages[index])
        if d.writers_done:
            return RunResult(d.run_id, d.attempt, "succeeded", exhausted=True)
        return RunResult(d.run_id, d.attempt, "succeeded", idle=True)

    @staticmethod
    def _ok(
        d: Dispatch, cursor: Any = None, delivery: str | None = None, **outputs: Any
    ) -> RunResult:
        return RunResult(
            d.run_id, d.attempt, "succeeded", outputs, cursor=cursor, delivery=delivery
        )

    # whole jobs -------------------------------------------------------------------
    def step(self, pick: Callable[[list[str]], str] = operator.itemgetter(0)) -> None:
        """One move of the executor: tick when a timer is due, else answer the run
        ``pick`` chooses, else wait for the next timer. An idle queue poll is
        not answered while a timer is pending: time passes first."""
        due = self.scheduler.next_deadline()
        if due is not None and due <= self.now:
            self.tick(self.now)
        elif self.inflight:
            result = self.outcome(self.inflight[pick(list(self.inflight))])
            if result.idle and due is not None:
                self.tick(due)
            else:
                self.send(result)
        else:
            assert due is not None, "the job is stuck: nothing in flight and no timer"
            self.tick(due)

    def run(
        self,
        pick: Callable[[list[str]], str] = operator.itemgetter(0),
        max_steps: int = 10_000,
    ) -> JobChanged:
        """Step (see :meth:`step`) until the job ends; return its last change."""
        if not self.log:
            self.start()
        for _ in range(max_steps):
            ended = self.ended()
            if ended is not None:
                return ended
            self.step(pick)
        raise AssertionError(f"the job did not end within {max_steps} steps")

    def ended(self) -> JobChanged | None:
        """The job's terminal change, once it happened."""
        for commands in reversed(self.steps):
            for change in reversed(of_type(commands, JobChanged)):
                return change if change.status in ("completed", "failed", "cancelled") else None
        return None

    def all_commands(self) -> list[Command]:
        """Every command returned so far, in order."""
        return [c for commands in self.steps for c in commands]

    def acks(self) -> list[Ack]:
        """Every acknowledgement returned so far."""
        return of_type(self.all_commands(), Ack)

    def recorded_runs(self) -> list[RecordedRun]:
        """Each run as the store would hold it: its latest change, the latest last.

        A change without a finish time is stamped with the test clock then."""
        latest: dict[str, RecordedRun] = {}
        for (_, at), commands in zip(self.log, self.steps, strict=True):
            for change in of_type(commands, RunChanged):
                latest.pop(change.run_id, None)
                latest[change.run_id] = RecordedRun(
                    change.node.id, change.status, change.attempt, change.finished_at or at
                )
        return list(latest.values())

    def health(self) -> dict[str, dict[str, Any]]:
        """Node health of the job so far, by the one health function."""
        return node_health(self.recorded_runs())


class RecordedRun(NamedTuple):
    """What the store keeps of a run, as far as node health reads it."""

    node: str
    status: str
    attempt: int
    finished_at: float | None
