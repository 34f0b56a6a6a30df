"""The conformance harness: DESIGN section 3, stated once, run over every executor.

The tests use only the public client API and built-in node types, so the same
suite runs unchanged against an executor whose workers live in other
processes. Each test gets its own home folder, so stores never collide.
``tests/conformance`` and ``tests/examples`` import the :func:`executor` fixture
from here.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Client, Job, JobEvent, JobResult, Workflow, WorkflowBuilder
from orchestrator.client import RunInfo
from orchestrator.streams.hubs import open_stream_hub
from tests.support.cluster import Cluster
from tests.support.inprocess import InProcessCluster

EXECUTORS = ["embedded", "inprocess", pytest.param("celery", marks=pytest.mark.services)]
"""Executor kinds every conformance test runs on: the embedded engine; the
coordinator with workers in this process, on the memory store and channels (no
services); and a real cluster (coordinator and Celery workers in other
processes, PostgreSQL, Redis)."""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def open_client(
    kind: str, home: Path, request: pytest.FixtureRequest, resources: ExitStack
) -> Client:
    """A client over a backend of ``kind``: a fresh embedded engine under ``home``,
    a fresh in-process cluster (stopped when ``resources`` closes), or the
    session's cluster."""
    if kind == "embedded":
        return Client.embedded(home)
    if kind == "inprocess":
        inprocess = InProcessCluster(home)
        resources.callback(inprocess.close)
        return inprocess.client()
    if kind == "celery":
        cluster: Cluster = request.getfixturevalue("cluster")
        return cluster.client()
    raise ValueError(f"unknown executor kind {kind!r}")


class Harness:
    """One executor under test, with helpers to build, run and watch workflows.

    Attributes:
        kind: The executor kind (one of :data:`EXECUTORS`).
        client: The public client over that executor.
    """

    def __init__(self, kind: str, home: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.home = home
        self._resources = ExitStack()
        self.client = open_client(kind, home, request, self._resources)
        self._resources.callback(self.client.close)  # first, before what serves it

    def close(self) -> None:
        """Release the backend (and stop what runs it, if the harness started it)."""
        self._resources.close()

    # workflows ------------------------------------------------------------------
    @staticmethod
    def load(text: str) -> Workflow:
        """A workflow from YAML text (indentation is removed first)."""
        return Workflow.loads(textwrap.dedent(text))

    @staticmethod
    def builder(name: str) -> WorkflowBuilder:
        """A new builder for a workflow called ``name``."""
        return WorkflowBuilder(name)

    @staticmethod
    def example(name: str) -> Workflow:
        """The workflow ``examples/{name}.yaml``."""
        return Workflow.load(EXAMPLES / f"{name}.yaml")

    # running --------------------------------------------------------------------
    def submit(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> Job:
        """Start a job."""
        return self.client.submit(workflow, inputs)

    def run(
        self, workflow: Workflow, inputs: dict[str, Any] | None = None, timeout: float = 30
    ) -> JobResult:
        """Submit a job and wait until it ends."""
        return self.submit(workflow, inputs).wait(timeout=timeout)

    # watching -------------------------------------------------------------------
    @staticmethod
    def await_event(
        job: Job, predicate: Callable[[JobEvent], bool], timeout: float = 15
    ) -> JobEvent:
        """The first event of ``job`` (from its start) that matches ``predicate``.

        Raises:
            AssertionError: the job ended without such an event.
        """
        for event in job.events(timeout=timeout):
            if predicate(event):
                return event
        raise AssertionError(f"job {job.id} ended without the awaited event")

    def await_loop(self, job: Job, loop: str, status: str, timeout: float = 15) -> JobEvent:
        """The event saying loop ``loop`` of ``job`` reached ``status``."""
        return self.await_event(
            job, lambda e: e.kind == "loop" and e.loop == loop and e.status == status, timeout
        )

    def await_run(self, job: Job, loop: str, timeout: float = 15) -> JobEvent:
        """The first event of a run in ``loop`` of ``job`` that succeeded."""
        return self.await_event(
            job, lambda e: e.kind == "run" and e.loop == loop and e.status == "succeeded", timeout
        )

    @staticmethod
    def loop_info(job: Job, name: str) -> Any:
        """The :class:`LoopInfo` of loop ``name`` as the client reports it now."""
        loops = {info.name: info for info in job.loops()}
        return loops[name]

    @staticmethod
    def max_overlap(runs: list[RunInfo]) -> int:
        """The most runs whose [started_at, finished_at] intervals overlap at one instant."""
        edges: list[tuple[float, int]] = []
        for run in runs:
            assert run.started_at is not None and run.finished_at is not None, run
            edges += [(run.started_at, 1), (run.finished_at, -1)]
        edges.sort()  # at equal times an end sorts first: touching intervals do not overlap
        current = peak = 0
        for _, step in edges:
            current += step
            peak = max(peak, current)
        return peak

    def open_stream_channels(self, job_id: str) -> int:
        """How many stream channels of ``job_id`` the backend still holds."""
        backend: Any = self.client._backend
        if self.kind == "embedded":
            hub: Any = backend.driver.runner.streams
        else:
            hub = open_stream_hub(backend.settings.broker_url)
        return len(hub.channels_of(job_id))

    @staticmethod
    def runs_of(job: Job, node: str, loop: str | None = None) -> list[RunInfo]:
        """The recorded runs of ``node``, by iteration."""
        runs = [r for r in job.runs(loop) if r.node == node]
        return sorted(runs, key=lambda r: r.iteration)


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A :class:`Harness` over each executor kind, with its own home folder."""
    harness = Harness(request.param, tmp_path / "home", request)
    try:
        yield harness
    finally:
        harness.close()
