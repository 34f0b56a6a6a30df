"""Local pools that execute node runs in this process (embedded mode).

* ``thread``: a thread pool; runs are handed over in chunks, so tiny nodes
  do not pay one hand-off each.
* ``asyncio``: one event loop in its own thread; async nodes run on it,
  sync nodes in its default thread pool.
* ``process``: a process pool (spawned, so CUDA is never touched in a forked
  parent; see :mod:`orchestrator.engine.processes`); a child receives the
  node's type name, JSON config and JSON inputs - never a pickled node - and
  builds the node from its own registry.
* GPU runs (``route.gpu > 0``) go through one thread, one at a time, in
  submission order, each measured by a :class:`~orchestrator.gpumeter.GpuMeter`
  (device, peak memory: the same ``gpu`` event a GPU worker reports).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import threading
from collections.abc import Sequence

from orchestrator.driver.executor import ResultSink
from orchestrator.engine.processes import ProcessPool
from orchestrator.gpufacts import GPU_EVENT
from orchestrator.gpumeter import GpuMeter
from orchestrator.inflight import IN_FLIGHT_S, InFlight
from orchestrator.results import RunError, RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler.commands import Dispatch
from orchestrator.streams.channels import MemoryStreamHub

CHUNK = 64


class LocalExecutor:
    """Runs dispatched node runs on local pools and reports results in batches.

    Args:
        runner: Executes one run.
        on_results: Receives finished runs (called from pool threads).
        threads: Size of the thread pool.
        processes: Size of the process pool (started on first use).
        artifacts_root: Artifacts folder or URL the process pool's children open.
        in_flight_s: How long a run is queued or running before it shows so
            (:mod:`orchestrator.inflight`; 0: never).
        gpu: Measures GPU runs (default: torch's device memory).
    """

    def __init__(
        self,
        runner: NodeRunner,
        on_results: ResultSink,
        threads: int | None = None,
        processes: int | None = None,
        artifacts_root: str | None = None,
        in_flight_s: float = IN_FLIGHT_S,
        gpu: GpuMeter | None = None,
    ) -> None:
        self.runner = runner
        self.gpu = gpu if gpu is not None else GpuMeter()
        self.in_flight = InFlight(runner.on_event, in_flight_s, runner.worker)
        self.on_results = on_results
        self._workers = threads or min(32, (os.cpu_count() or 2) * 4)
        self._threads = cf.ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="segue-thread"
        )
        self._gpu = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="segue-gpu")
        self._processes = ProcessPool(
            processes or (os.cpu_count() or 2),
            runner.registry,
            artifacts_root,
            self._process_results,
            runner.on_event,
            self.in_flight.started,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        if isinstance(runner.streams, MemoryStreamHub):
            runner.streams.also_end.append(self.end_job)  # the process pool's channels end too

    # submission ---------------------------------------------------------------------
    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        """Start every dispatch on the pool its route names.

        Runs of ``inline`` node types routed to the thread or asyncio pool are
        executed right here, on the caller's thread: their results are returned
        instead of reported, sparing a hand-off that would cost more than the run.
        """
        threads: list[Dispatch] = []
        inline: list[RunResult] = []
        queued = self.in_flight.queued
        run = self.runner.run
        for dispatch in dispatches:
            node = dispatch.node
            route = node.route
            streaming = node.live or bool(node.streams)
            if node.inline and not (route.gpu or streaming) and route.pool != "process":
                inline.append(run(dispatch))
                continue
            queued(dispatch)
            if streaming and not route.gpu and route.pool == "thread":
                # alone on a thread: a stream's consumer must run beside its producer
                self._threads.submit(self._run_chunk, [dispatch])
            elif node.role.queue:
                threads.append(dispatch)  # queue nodes use this process's queue backend
            elif route.gpu:
                self._gpu.submit(self._run_gpu, dispatch)
            elif route.pool == "asyncio":
                self._submit_async(dispatch)
            elif route.pool == "process":
                self._submit_process(dispatch)
            else:
                threads.append(dispatch)
        if threads:
            self._submit_threads(threads)
        return inline

    def _submit_threads(self, dispatches: list[Dispatch]) -> None:
        # Spread runs over the pool's workers, in chunks of at most CHUNK.
        workers = self._workers
        size = max(1, min(CHUNK, -(-len(dispatches) // workers)))
        for start in range(0, len(dispatches), size):
            self._threads.submit(self._run_chunk, dispatches[start : start + size])

    def _run_chunk(self, dispatches: list[Dispatch]) -> None:
        results: list[RunResult] = []
        try:
            started, ended = self.in_flight.started, self.in_flight.ended
            for dispatch in dispatches:
                started(dispatch.run_id, dispatch)
                results.append(self.runner.run(dispatch))
                ended(dispatch.run_id)
        finally:
            # The runner turns every outcome into a result; should it ever raise,
            # the chunk's other runs are still reported.
            failed = [_lost(d) for d in dispatches[len(results) :]]
            self.on_results(results + failed)

    def _run_gpu(self, dispatch: Dispatch) -> None:
        result: RunResult | None = None
        try:
            self.in_flight.started(dispatch.run_id, dispatch)
            result, facts = self.gpu.measure(dispatch, self.runner.run)
            self.in_flight.ended(dispatch.run_id)
            self.runner.on_event(dispatch.run_id, GPU_EVENT, facts)
        finally:
            self.on_results([result if result is not None else _lost(dispatch)])

    def _submit_async(self, dispatch: Dispatch) -> None:
        loop = self._event_loop()
        future = asyncio.run_coroutine_threadsafe(self._run_async(dispatch), loop)
        future.add_done_callback(lambda f: self.on_results([_outcome(dispatch, f)]))

    async def _run_async(self, dispatch: Dispatch) -> RunResult:
        self.in_flight.started(dispatch.run_id, dispatch)
        try:
            return await self.runner.run_async(dispatch)
        finally:
            self.in_flight.ended(dispatch.run_id)

    def _submit_process(self, dispatch: Dispatch) -> None:
        self._processes.submit(dispatch)

    def _process_results(self, results: list[RunResult]) -> None:
        for result in results:
            self.in_flight.ended(result.run_id)
        self.on_results(results)

    # pools ----------------------------------------------------------------------------
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="segue-asyncio", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def end_job(self, job_id: str) -> None:
        """Drop a finished job's channels in the process pool's stream server."""
        hub = self._processes.streams
        if hub is not None:
            hub.end_job(job_id)

    def close(self, wait: bool = True) -> None:
        """Stop the pools; with ``wait``, let running nodes finish first."""
        if self._closed:
            return
        self._closed = True
        self.in_flight.close()
        self._threads.shutdown(wait=wait, cancel_futures=True)
        self._gpu.shutdown(wait=wait, cancel_futures=True)
        self._processes.close(wait)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None and wait:
                self._loop_thread.join(timeout=5)


def _lost(dispatch: Dispatch) -> RunResult:
    error = RunError("RuntimeError", f"run {dispatch.run_id} was lost: the runner raised")
    return RunResult(dispatch.run_id, dispatch.attempt, "failed", error=error)


def _outcome(dispatch: Dispatch, future: cf.Future[RunResult]) -> RunResult:
    try:
        return future.result()
    except BaseException as exc:  # the runner turns every outcome into a result; if not
        return RunResult(dispatch.run_id, dispatch.attempt, "failed", error=RunError.of(exc))
