"""Dataflow inside one stage: creating runs, readiness, dispatch, skipping, groups.

A stage is the main stage, a loop iteration, or one item of a group. A run is
ready when every upstream run of its stage - and, for a feedback input, the
source's run of the previous iteration - has finished.
"""

from __future__ import annotations

from typing import Any

from nodes.base import Role
from nodes.ids import RunId
from orchestrator.planner.plan import InputBinding, Plan
from orchestrator.scheduler.commands import Command, Dispatch, RunChanged
from orchestrator.scheduler.state import GroupState, JobState, LoopState, RunState, Stage
from orchestrator.states import RunStatus
from orchestrator.streams.marker import stream_marker


class StageMachine:
    """The part of the scheduler that moves runs inside stages."""

    state: JobState
    out: list[Command]
    now: float

    # hooks the loop machine provides ------------------------------------------
    def stage_settled(self, stage: Stage) -> None:  # pragma: no cover - overridden
        """Called when a stage's blocking runs (or all its runs) have finished."""

    def writers_done(self, loop: LoopState) -> bool:  # pragma: no cover - overridden
        """Whether every writer of the queue a reader loop reads has ended."""
        return False

    def run_failed(self, run: RunState) -> None:  # pragma: no cover - overridden
        """Called when a run failed for good (its retries spent)."""

    # building stages ------------------------------------------------------------
    def new_stage(
        self,
        loop: LoopState,
        index: int,
        plan: Plan,
        node_ids: tuple[str, ...],
        parent: RunState | None = None,
        item: int = 0,
    ) -> Stage:
        """Create the runs of one stage and count what each one waits for."""
        prefix = RunId.prefix(self.state.job_id, loop.name, index)
        stage = Stage(loop, index, plan, prefix, parent, item)
        runs = stage.runs
        nodes = plan.nodes
        for node_id in node_ids:
            node = nodes[node_id]
            run = runs[node_id] = RunState(node, stage)
            for source in node.upstream:
                if source in runs:
                    run.pending += 1
            if node.detached:
                stage.open_detached += 1
            else:
                stage.open_blocking += 1
        if parent is None and not loop.is_main:
            self._wait_for_feedback(loop, stage)
        return stage

    def _wait_for_feedback(self, loop: LoopState, stage: Stage) -> None:
        previous, loop.previous = loop.previous, stage
        if previous is None:
            if loop.feedback:  # the loop went on after a dropped iteration
                stage.feedback.update(loop.feedback)
            return
        for target, binding in loop.plan.feedback:
            source = previous.runs.get(binding.source)
            if source is not None and not source.status.terminal:
                stage.runs[target].pending += 1
                if source.waiters is None:
                    source.waiters = []
                source.waiters.append(stage.runs[target])
            else:
                _carry_feedback(stage, previous, target, binding, source)

    def _release_waiters(self, run: RunState) -> None:
        """``run`` ended: the next iteration's feedback targets get its value and go on."""
        waiters = run.waiters
        if not waiters:
            return
        run.waiters = None
        source = run.node.id
        for waiter in waiters:
            for binding in waiter.node.inputs:
                if binding.feedback and binding.source == source:
                    _carry_feedback(waiter.stage, run.stage, waiter.node.id, binding, run)
            waiter.pending -= 1
            if waiter.pending == 0 and waiter.attempt == 0:
                self.ready(waiter)

    def start_ready(self, stage: Stage, skip: str | None = None) -> None:
        """Make ready every run of a fresh stage that waits for nothing."""
        for run in list(stage.runs.values()):
            if run.pending == 0 and run.attempt == 0 and run.node.id != skip:
                self.ready(run)

    # readiness and dispatch --------------------------------------------------------
    def ready(self, run: RunState) -> None:
        """``run`` waits for nothing more: dispatch it, or queue it behind the limit."""
        stage = run.stage
        if run.node.detached and stage.parent is None:
            loop = stage.loop
            if loop.detached_inflight >= loop.plan.policy.max_inflight_nonblocking:
                loop.backlog.append(run)
                return
            loop.detached_inflight += 1
        role = run.node.role
        if not role.settled:
            self.dispatch(run)
        elif role is Role.GROUP:
            self._start_group(run)
        else:
            run.attempt = 1
            value = (
                self._input_value(run) if role is Role.INPUT else self.inputs_of(run).get("value")
            )
            self.finish(run, RunStatus.SUCCEEDED, {"value": value})

    def dispatch(self, run: RunState, kind: str = "run", cursor: Any = None) -> None:
        """Send the next attempt of ``run`` to the executor."""
        run.attempt += 1
        run.status = RunStatus.QUEUED
        node = run.node
        deadline = self.now + node.timeout_s if node.timeout_s else None
        run.deadline = deadline
        run.dispatched_at = self.now
        self.state.active[run.run_id] = run
        if deadline is not None:
            self.state.add_timer(deadline, run)
        producing = kind == "produce"
        self.out.append(
            Dispatch(
                run.run_id,
                node,
                run.stage.loop.name,
                run.stage.index,
                run.attempt,
                self.inputs_of(run),
                "produce" if producing else "run",
                cursor,
                self.writers_done(run.stage.loop) if producing else False,
                deadline,
                self.state.job_id,
                False,
                run.path,
            )
        )
        if node.streams and run.attempt == 1:
            self._start_streaming(run)

    def _start_streaming(self, run: RunState) -> None:
        """A stream's source is sent: its live consumers start beside it (DESIGN 3.14)."""
        runs = run.stage.runs
        for consumer_id in dict.fromkeys(c for _, c in run.node.streams):
            consumer = runs.get(consumer_id)
            if consumer is None:
                continue
            consumer.pending -= 1
            if consumer.pending == 0 and consumer.attempt == 0:
                self.ready(consumer)

    def inputs_of(self, run: RunState) -> dict[str, Any]:
        """Input values of ``run``: upstream outputs, feedback values, main-stage outputs."""
        node = run.node
        if not node.inputs:
            return {}
        stage = run.stage
        values: dict[str, Any] = {}
        for binding in node.inputs:
            if binding.feedback:
                key = (node.id, binding.port)
                feedback = stage.feedback
                if key in feedback:
                    values[binding.port] = feedback[key]
                elif binding.has_initial:
                    values[binding.port] = binding.initial
                continue
            source = stage.runs.get(binding.source)
            if binding.stream and source is not None:
                values[binding.port] = stream_marker(source.run_id, binding.source_port, node.id)
                continue
            outputs = (
                source.outputs
                if source is not None
                else self.state.main_outputs.get(binding.source)
            )
            if outputs is not None and binding.source_port in outputs:
                values[binding.port] = outputs[binding.source_port]
        return values

    def _input_value(self, run: RunState) -> Any:
        settings = run.node.settings
        name = getattr(settings, "name", None)
        parent = run.stage.parent
        group = parent.children if parent is not None else None
        if (
            parent is not None
            and group is not None
            and getattr(parent.node.settings, "input", None) == name
        ):
            return group.items[run.stage.item]
        if name in self.state.inputs:
            return self.state.inputs[name]
        return getattr(settings, "default", None)

    # groups -----------------------------------------------------------------------
    def _start_group(self, run: RunState) -> None:
        run.attempt = 1
        run.status = RunStatus.RUNNING
        self.state.active[run.run_id] = run
        items = self.inputs_of(run).get("items")
        if not isinstance(items, list):
            self.finish(
                run, RunStatus.FAILED, error=f"TypeError: items must be a list, got {items!r}"
            )
            return
        run.children = GroupState(run.stage.plan.subplans[run.node.id], items)
        if not items:
            self.finish(run, RunStatus.SUCCEEDED, {"results": []})
            return
        limit = getattr(run.node.settings, "max_parallel", None) or len(items)
        for _ in range(min(limit, len(items))):
            self._start_item(run)

    def _start_item(self, run: RunState) -> None:
        group = run.children
        assert group is not None
        item = group.next
        group.next += 1
        stage = self.new_stage(
            run.stage.loop, run.stage.index, group.plan, group.plan.main.nodes, run, item
        )
        self.start_ready(stage)

    def _item_done(self, stage: Stage) -> None:
        run = stage.parent
        assert run is not None and run.children is not None
        group = run.children
        output = getattr(run.node.settings, "output", "result")
        if stage.failed:
            group.error = group.error or f"item {stage.item} failed"
        else:
            for out in group.plan.outputs.values():
                if out.name == output:
                    result = stage.runs[out.node].outputs or {}
                    group.results[stage.item] = result.get("value")
        group.open -= 1
        if group.next < len(group.items) and run.status is RunStatus.RUNNING:
            self._start_item(run)
        elif group.open == 0 and not run.status.terminal:
            if group.error:
                self.finish(run, RunStatus.FAILED, error=f"GroupError: {group.error}")
            else:
                self.finish(run, RunStatus.SUCCEEDED, {"results": group.results})

    # finishing ----------------------------------------------------------------------
    def finish(
        self,
        run: RunState,
        status: RunStatus,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        traceback: str | None = None,
    ) -> None:
        """Record the end of ``run`` and release what waited for it."""
        run.status = status
        run.outputs = outputs
        run.error = error
        run.traceback = traceback
        self.state.active.pop(run.run_id, None)
        self.record(run)
        stage = run.stage
        if status.ok:
            self._released(run)
        else:
            # run_failed must see whether the stage had already failed: a detached
            # run failing after its iteration ended is counted only then.
            self.run_failed(run)
            stage.failed = True
            self.skip_downstream(run)
        if run.waiters:
            self._release_waiters(run)
        self.close_in_stage(run)

    def _released(self, run: RunState) -> None:
        stage = run.stage
        loop = stage.loop
        outputs = run.outputs or {}
        node = run.node
        if stage.parent is None:
            if loop.is_main:
                self.state.main_outputs[node.id] = outputs
            elif node.role is Role.OUTPUT and not stage.failed:
                loop.outputs.setdefault(node.id, {})[stage.index] = outputs.get("value")
            for target, binding in loop.plan.feedback:
                if binding.source == node.id and binding.source_port in outputs:
                    loop.feedback[(target, binding.port)] = outputs[binding.source_port]
        runs = stage.runs
        live = {c for _, c in node.streams} if node.streams else ()
        for consumer_id in node.consumers:
            consumer = runs.get(consumer_id)
            if consumer is None or consumer_id in live:  # released when the stream began
                continue
            consumer.pending -= 1
            if consumer.pending == 0 and consumer.attempt == 0:
                self.ready(consumer)

    def record(self, run: RunState) -> None:
        """Tell the driver to record ``run``'s current state."""
        self.out.append(
            RunChanged(
                run.run_id,
                run.stage.loop.name,
                run.stage.index,
                run.node,
                run.status.value,
                run.attempt,
                run.outputs,
                run.error,
                run.started_at,
                run.finished_at,
                run.worker,
                run.traceback,
                run.path,
            )
        )

    def skip_downstream(self, run: RunState) -> None:
        """Mark every run downstream of a failed ``run`` as skipped."""
        runs = run.stage.runs
        todo = list(run.node.consumers)
        while todo:
            consumer = runs.get(todo.pop())
            if consumer is None or consumer.status.terminal or consumer.attempt:
                continue
            consumer.status = RunStatus.SKIPPED
            self.record(consumer)
            self._release_waiters(consumer)
            self.close_in_stage(consumer)
            todo.extend(consumer.node.consumers)

    def close_in_stage(self, run: RunState) -> None:
        """Count ``run`` as finished in its stage; settle the stage when it empties."""
        stage = run.stage
        if run.node.detached:
            stage.open_detached -= 1
            if stage.parent is None and run.attempt:
                stage.loop.detached_inflight -= 1
                self.drain_backlog(stage.loop)
        else:
            stage.open_blocking -= 1
        if stage.parent is not None:
            if stage.open_blocking == 0 and stage.open_detached == 0:
                self._item_done(stage)
            return
        if stage.open_blocking == 0 or stage.open_detached == 0:
            self.stage_settled(stage)

    def drain_backlog(self, loop: LoopState) -> None:
        """Dispatch detached runs that waited for a free slot."""
        limit = loop.plan.policy.max_inflight_nonblocking
        while loop.backlog and loop.detached_inflight < limit:
            run = loop.backlog.popleft()
            if not run.status.terminal:
                loop.detached_inflight += 1
                if run.node.role.settled:
                    self._dispatch_inline(run)
                else:
                    self.dispatch(run)

    def _dispatch_inline(self, run: RunState) -> None:
        loop = run.stage.loop
        loop.detached_inflight -= 1  # ready() counts it again
        self.ready(run)


def _carry_feedback(
    stage: Stage, previous: Stage, target: str, binding: InputBinding, source: RunState | None
) -> None:
    """Set the value ``binding`` carries into ``stage``: the source's output in the
    ``previous`` iteration, or, when that run gave none (failed, skipped), what the
    previous iteration itself received (DESIGN 3.4). Taken per iteration, so a
    target that runs after its source in the same iteration still reads the value
    of the iteration before."""
    key = (target, binding.port)
    outputs = source.outputs if source is not None and source.status.ok else None
    if outputs is not None and binding.source_port in outputs:
        stage.feedback[key] = outputs[binding.source_port]
    elif key in previous.feedback:
        stage.feedback[key] = previous.feedback[key]
    elif key in stage.loop.feedback:
        stage.feedback[key] = stage.loop.feedback[key]
