"""Loop progression: iterations, the producer's pace, policies, control, job end."""

from __future__ import annotations

from typing import Any

from nodes.base import Role
from nodes.context import MAIN
from orchestrator.scheduler.commands import Ack, JobChanged, LoopChanged
from orchestrator.scheduler.stages import StageMachine
from orchestrator.scheduler.state import LoopState, RunState, Stage
from orchestrator.states import DesiredLoopState, JobStatus, LoopStatus, RunStatus


def until_met(loop: LoopState, stage: Stage) -> bool:
    """Whether the loop's ``until`` output was truthy in the iteration ``stage``.

    The ``until`` node is a blocking member of the loop (validation sees to
    it), so it has finished when its iteration is done. A run that failed or
    was skipped gave no value: the loop goes on. Truthiness is Python's over
    the JSON value (``false``, ``0``, ``""``, ``[]``, ``{}`` and ``null`` are
    falsy); an output moved into an artifact was over the size threshold, so
    never empty, and its marker is rightly truthy.
    """
    policy = loop.plan.policy
    node = policy.until_node
    if node is None:
        return False
    run = stage.runs.get(node)
    if run is None or not run.status.ok or run.outputs is None:
        return False
    return bool(run.outputs.get(policy.until_port or ""))


class LoopMachine(StageMachine):
    """The part of the scheduler that moves loops and the job."""

    # starting ----------------------------------------------------------------
    def start_job(self) -> None:
        """Run the main stage; loops start once its blocking runs are done."""
        state = self.state
        state.status = JobStatus.RUNNING
        self.out.append(JobChanged(state.status.value, {}))
        main = state.main
        self.set_status(main, LoopStatus.RUNNING)
        stage = self.new_stage(main, 0, state.plan, main.plan.nodes)
        main.current = stage
        main.open[0] = stage
        main.next_iteration = 1
        self.start_ready(stage)
        self.stage_settled(stage)

    def _start_loops(self) -> None:
        for loop in self.state.loops.values():
            if loop.status is LoopStatus.PENDING:
                self.set_status(loop, LoopStatus.RUNNING)
                self.advance(loop)

    # iterations ----------------------------------------------------------------
    def advance(self, loop: LoopState) -> None:
        """Start the next iteration if the loop's state and policy allow it."""
        if loop.status.terminal or loop.ending is not None or loop.current is not None:
            return
        policy = loop.plan.policy
        if loop.desired is DesiredLoopState.STOPPED:
            self.end_loop(loop, LoopStatus.STOPPED)
        elif loop.desired is DesiredLoopState.PAUSED:
            self.set_status(loop, LoopStatus.PAUSED)
        elif (
            loop.exhausted
            or loop.until_met
            or (policy.max_iterations is not None and loop.next_iteration >= policy.max_iterations)
        ):
            self.end_loop(loop, LoopStatus.COMPLETED)
        elif loop.backlog or loop.detached_inflight >= policy.max_inflight_nonblocking:
            return  # backpressure: a finished detached run calls advance again
        else:
            if loop.status is LoopStatus.PAUSED:
                self.set_status(loop, LoopStatus.RUNNING)
            self._produce(loop)

    def _produce(self, loop: LoopState) -> None:
        index = loop.next_iteration
        loop.next_iteration += 1
        stage = self.new_stage(loop, index, self.state.plan, loop.plan.nodes)
        loop.current = stage
        loop.open[index] = stage
        loop.producing = True
        producer = stage.runs[loop.name]
        self.dispatch(producer, "produce", loop.cursor)

    def produced(
        self, run: RunState, cursor: Any, delivery: str | None, outputs: dict[str, Any]
    ) -> None:
        """The producer yielded the item of its iteration: the iteration runs."""
        loop = run.stage.loop
        loop.producing = False
        loop.cursor = cursor
        loop.idle_since = None
        run.stage.delivery = delivery
        self.finish(run, RunStatus.SUCCEEDED, outputs)

    def exhausted(self, run: RunState) -> None:
        """The producer has no more items: the unused iteration is dropped."""
        loop = run.stage.loop
        loop.producing = False
        loop.exhausted = True
        self.state.active.pop(run.run_id, None)
        stage = run.stage
        loop.open.pop(stage.index, None)
        loop.current = None
        loop.next_iteration = stage.index
        loop.previous = None
        self.advance(loop)
        self.maybe_end(loop)  # a loop already ending waited only for this answer

    def idle(self, run: RunState) -> None:
        """A queue reader found no message: poll again, or end after its idle timeout."""
        loop = run.stage.loop
        timeout = getattr(run.node.settings, "idle_timeout_s", None)
        if loop.idle_since is None:
            loop.idle_since = self.now
        if (
            loop.desired is not DesiredLoopState.RUNNING
            or loop.ending is not None
            or (timeout is not None and self.now - loop.idle_since >= timeout)
        ):
            self.exhausted(run)
            if loop.desired is not DesiredLoopState.RUNNING:
                loop.exhausted = False
            return
        run.attempt -= 1  # polling again is the same attempt
        self.dispatch(run, "produce", loop.cursor)

    def stage_settled(self, stage: Stage) -> None:
        loop = stage.loop
        if stage.open_blocking == 0 and loop.current is stage:
            loop.current = None
            self._iteration_done(loop, stage)
        if stage.open_blocking == 0 and stage.open_detached == 0:
            loop.open.pop(stage.index, None)
        if not loop.is_main and stage.parent is None and loop.current is None:
            # A detached run that finished may have freed the slot the loop waited
            # for (backpressure): let the producer go on.
            self.advance(loop)
        self.maybe_end(loop)

    def _iteration_done(self, loop: LoopState, stage: Stage) -> None:
        if loop.is_main:
            if stage.failed:
                loop.failed += 1
                self.end_loop(loop, LoopStatus.FAILED)
                for other in self.state.loops.values():
                    self.end_loop(other, LoopStatus.CANCELLED)
            else:
                loop.completed += 1
                self.end_loop(loop, LoopStatus.COMPLETED)
                self._start_loops()
            return
        if stage.delivery is not None:
            self.out.append(Ack(loop.name, loop.name, stage.delivery))
        if stage.failed:
            loop.failed += 1
            self._apply_error_policy(loop)
        else:
            loop.completed += 1
        if until_met(loop, stage):
            loop.until_met = True
        self.loop_changed(loop)
        self.advance(loop)

    def run_failed(self, run: RunState) -> None:
        stage = run.stage
        loop = stage.loop
        if self.state.error is None:
            where = "main stage" if loop.is_main else f"loop {loop.name!r} iteration {stage.index}"
            self.state.error = f"node {run.path!r} failed in {where}: {run.error}"
        if stage.parent is not None:
            return
        if loop.is_main:
            if loop.current is not stage and not stage.failed:
                # A detached run failed after the main stage's blocking runs ended
                # (counted completed): the main stage still ends failed.
                loop.completed -= 1
                loop.failed += 1
                stage.failed = True
                self.end_loop(loop, LoopStatus.FAILED)
            return
        for values in loop.outputs.values():
            values.pop(stage.index, None)
        if loop.current is not stage and not stage.failed:
            # A detached run failed after its iteration ended, counted completed.
            loop.completed -= 1
            loop.failed += 1
            stage.failed = True
            self._apply_error_policy(loop)
            self.loop_changed(loop)

    def _apply_error_policy(self, loop: LoopState) -> None:
        policy = loop.plan.policy.on_error
        if policy == "stop":
            self.end_loop(loop, LoopStatus.FAILED)
        elif policy == "pause" and loop.desired is DesiredLoopState.RUNNING:
            loop.desired = DesiredLoopState.PAUSED

    # control --------------------------------------------------------------------
    def control(self, loop: LoopState, desired: DesiredLoopState) -> None:
        """Apply an operator's pause, resume or stop at the next iteration boundary."""
        if loop.status.terminal or loop.is_main or loop.desired is desired:
            return  # a repeated request changes nothing and is recorded once
        loop.desired = desired
        recorded = len(self.out)
        if loop.status is not LoopStatus.PENDING and loop.current is None:
            if desired is DesiredLoopState.RUNNING and loop.status is LoopStatus.PAUSED:
                self.set_status(loop, LoopStatus.RUNNING)
            self.advance(loop)
        if not any(isinstance(c, LoopChanged) and c.loop == loop.name for c in self.out[recorded:]):
            self.loop_changed(loop)

    # ending ---------------------------------------------------------------------
    def end_loop(self, loop: LoopState, status: LoopStatus) -> None:
        """End a loop once its detached runs are done."""
        if loop.status.terminal:
            return
        # A loop already ending completed or stopped still waits for its detached
        # runs; one of them failing under `on_error: stop` makes it end failed.
        failing_late = status is LoopStatus.FAILED and loop.ending in (
            LoopStatus.COMPLETED,
            LoopStatus.STOPPED,
        )
        if loop.ending is not None and not failing_late:
            return
        loop.ending = status
        if status is LoopStatus.CANCELLED and loop.status is LoopStatus.PENDING:
            loop.open.clear()
        self.maybe_end(loop)

    def maybe_end(self, loop: LoopState) -> None:
        """Move a loop to its end status when nothing of it is open; maybe end the job."""
        ending = loop.ending
        if ending is not None and not loop.open and not loop.producing and not loop.status.terminal:
            self.set_status(loop, ending)
        self.maybe_finish_job()

    def writers_done(self, loop: LoopState) -> bool:
        node = loop.plan.producer
        plan = self.state.plan
        if node is None or plan.nodes[node].role is not Role.QUEUE_READER:
            return False
        settings = plan.nodes[node].settings
        if getattr(settings, "scope", "job") != "job":
            return False
        queue = plan.queues.get(getattr(settings, "queue", ""))
        if queue is None:
            return True
        for writer in queue.writers:
            writer_loop = self.state.loop(writer.loop)
            if not writer_loop.status.terminal:
                return False
        return True

    def set_status(self, loop: LoopState, status: LoopStatus) -> None:
        """Move ``loop`` to ``status`` and record it."""
        if loop.status is not status:
            loop.status = status
            self.loop_changed(loop)

    def loop_changed(self, loop: LoopState) -> None:
        """Record the loop's state."""
        self.out.append(
            LoopChanged(
                loop.name,
                loop.status.value,
                loop.desired.value,
                loop.completed + loop.failed,
                loop.failed,
                loop.cursor,
            )
        )

    def maybe_finish_job(self) -> None:
        """End the job when every loop ended and no run is open."""
        state = self.state
        if state.status.terminal or state.active:
            return
        if not all(loop.status.terminal for loop in state.all_loops()):
            return
        if state.cancelled:
            status = JobStatus.CANCELLED
        elif any(loop.status is LoopStatus.FAILED for loop in state.all_loops()):
            status = JobStatus.FAILED
        else:
            status = JobStatus.COMPLETED
        state.status = status
        error = None if status is JobStatus.COMPLETED else state.error
        self.out.append(JobChanged(status.value, self.outputs(), error))

    def outputs(self) -> dict[str, Any]:
        """The job's outputs: one value from the main stage, a list (or last) from a loop."""
        state = self.state
        result: dict[str, Any] = {}
        for out in state.plan.outputs.values():
            if out.loop == MAIN:
                result[out.name] = (state.main_outputs.get(out.node) or {}).get("value")
                continue
            values = state.loop(out.loop).outputs.get(out.node, {})
            ordered = [values[i] for i in sorted(values)]
            result[out.name] = (
                ordered[-1]
                if out.collect == "last" and ordered
                else (None if out.collect == "last" else ordered)
            )
        return result
