"""``AsyncClient``: the client's API for asyncio code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nodes.registry import NodeRegistry
from orchestrator.client.client import Client
from orchestrator.model.workflow import Workflow
from orchestrator.settings import Settings
from orchestrator.views import JobEvent, JobResult, LogLine, LoopInfo, RunInfo

_DONE = object()


class AsyncJob:
    """A submitted job, for asyncio code."""

    def __init__(self, client: AsyncClient, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def events(self, timeout: float | None = None) -> AsyncIterator[JobEvent]:
        """Live updates; the iterator ends when the job ends."""
        return self.client.events(self.id, timeout)

    async def wait(self, timeout: float | None = None) -> JobResult:
        """Wait until the job ends."""
        return await self.client.wait(self.id, timeout)

    async def loops(self) -> list[LoopInfo]:
        """The job's loops."""
        return await self.client.loops(self.id)

    async def cancel(self) -> None:
        """Cancel the job."""
        await self.client.cancel(self.id)

    async def logs(
        self, loop: str | None = None, node: str | None = None, level: str | None = None
    ) -> list[LogLine]:
        """The job's run logs and tracebacks."""
        return await self.client.logs(self.id, loop, node, level)


class AsyncClient:
    """Mirrors :class:`Client` with awaitable methods; blocking work runs in threads."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def embedded(
        cls,
        home: str | Path | None = None,
        *,
        database_url: str | None = None,
        registry: NodeRegistry | None = None,
        settings: Settings | None = None,
    ) -> AsyncClient:
        """An async client over an engine running in this process."""
        return cls(
            Client.embedded(home, database_url=database_url, registry=registry, settings=settings)
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the backend."""
        await asyncio.to_thread(self._client.close)

    async def submit(
        self, workflow: Workflow | str | Path, inputs: dict[str, Any] | None = None
    ) -> AsyncJob:
        """Validate and start a job."""
        job = await asyncio.to_thread(self._client.submit, workflow, inputs)
        return AsyncJob(self, job.id)

    async def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Wait until the job ends."""
        return await asyncio.to_thread(self._client.wait, job_id, timeout)

    async def events(self, job_id: str, timeout: float | None = None) -> AsyncIterator[JobEvent]:
        """The job's events from its start, then live, until it ends."""
        iterator = await asyncio.to_thread(self._client.events, job_id, timeout)
        while True:
            event = await asyncio.to_thread(next, iterator, _DONE)
            if event is _DONE:
                return
            assert isinstance(event, JobEvent)
            yield event

    async def loops(self, job_id: str) -> list[LoopInfo]:
        """The job's loops."""
        return await asyncio.to_thread(self._client.loops, job_id)

    async def pause_loop(self, job_id: str, loop: str) -> None:
        """Pause a loop after its in-flight iteration."""
        await asyncio.to_thread(self._client.pause_loop, job_id, loop)

    async def resume_loop(self, job_id: str, loop: str) -> None:
        """Resume a paused loop."""
        await asyncio.to_thread(self._client.resume_loop, job_id, loop)

    async def stop_loop(self, job_id: str, loop: str) -> None:
        """Stop a loop after its in-flight iteration."""
        await asyncio.to_thread(self._client.stop_loop, job_id, loop)

    async def cancel(self, job_id: str) -> None:
        """Cancel a job."""
        await asyncio.to_thread(self._client.cancel, job_id)

    async def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        """The job's node runs as recorded."""
        return await asyncio.to_thread(self._client.runs, job_id, loop)

    async def logs(
        self,
        job_id: str,
        loop: str | None = None,
        node: str | None = None,
        level: str | None = None,
        after: int = 0,
    ) -> list[LogLine]:
        """The job's run logs and tracebacks (see :meth:`Client.logs`)."""
        return await asyncio.to_thread(self._client.logs, job_id, loop, node, level, after)

    async def node_health(self, job_id: str) -> dict[str, dict[str, Any]]:
        """Per node health."""
        return await asyncio.to_thread(self._client.node_health, job_id)
