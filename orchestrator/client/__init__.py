"""Clients: submit jobs, watch their events, steer their loops."""

from orchestrator.client.async_client import AsyncClient, AsyncJob
from orchestrator.client.client import Backend, Client, Job
from orchestrator.views import JobEvent, JobResult, LogLine, LogQuery, LoopInfo, RunInfo

__all__ = [
    "AsyncClient",
    "AsyncJob",
    "Backend",
    "Client",
    "Job",
    "JobEvent",
    "JobResult",
    "LogLine",
    "LogQuery",
    "LoopInfo",
    "RunInfo",
]
