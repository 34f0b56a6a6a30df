"""Errors of the orchestrator, children of the SDK's :class:`SegueError`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nodes.context import MAIN
from nodes.errors import SegueError


@dataclass(frozen=True)
class Issue:
    """One located fault in a workflow.

    Attributes:
        message: What is wrong and how to fix it.
        node: The node id involved, if any.
        edge: The edge involved, as ``a.x -> b.y``, if any.
        line: The 1-based line in the workflow file, when it was loaded from one.
        source: The file name, when it was loaded from one.
    """

    message: str
    node: str | None = None
    edge: str | None = None
    line: int | None = None
    source: str | None = None

    def located(self) -> str:
        """The message prefixed with ``file:line:`` where known."""
        where = ":".join(str(p) for p in (self.source, self.line) if p is not None)
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, str | int | None]:
        """The issue as the ``segue validate --json`` error object."""
        return {"message": self.message, "node": self.node, "edge": self.edge, "line": self.line}


class WorkflowError(SegueError):
    """A workflow cannot be loaded or run as written. Never retryable."""


class WorkflowParseError(WorkflowError):
    """A workflow file is not well-formed YAML or JSON, or cannot be read."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.issue = Issue(message=message, line=line, source=source)
        super().__init__(self.issue.located())

    @property
    def issues(self) -> list[Issue]:
        """The parse error as a one-item issue list."""
        return [self.issue]


class WorkflowInvalid(WorkflowError):
    """A workflow failed validation; ``issues`` holds every fault found."""

    def __init__(self, issues: Sequence[Issue], name: str | None = None) -> None:
        self.issues = list(issues)
        self.name = name
        head = f"workflow {name!r} is invalid" if name else "workflow is invalid"
        body = "\n".join(f"  - {issue.located()}" for issue in self.issues)
        super().__init__(f"{head} ({len(self.issues)} problem(s)):\n{body}")


class UnknownJobError(SegueError, KeyError):
    """A request named a job that does not exist (or is not driven where it was asked).

    Attributes:
        job_id: The job named.
    """

    def __init__(self, job_id: str, why: str = "there is no such job in the store") -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r}: {why}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownLoopError(SegueError, KeyError):
    """A request named a loop the job does not have, or one that cannot be steered.

    Attributes:
        job_id: The job named.
        loop: The loop named.
        known: The loops of the job that can be steered.
    """

    def __init__(self, job_id: str, loop: str, known: Sequence[str]) -> None:
        self.job_id = job_id
        self.loop = loop
        self.known = tuple(known)
        listed = ", ".join(self.known) or "none (the job has only its main stage)"
        what = "is the main stage; it cannot be steered" if loop == MAIN else "does not exist"
        super().__init__(f"loop {loop!r} of job {job_id} {what}; its loops: {listed}")

    def __str__(self) -> str:
        return str(self.args[0])


class NotInJobError(SegueError, KeyError):
    """A request named a loop or node a job does not have.

    Attributes:
        job_id: The job named.
        kind: ``loop`` or ``node``.
        name: The name asked for.
        known: The job's loops or nodes.
    """

    def __init__(self, job_id: str, kind: str, name: str, known: Sequence[str]) -> None:
        self.job_id = job_id
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"job {job_id} has no {kind} {name!r}; its {kind}s: {', '.join(self.known) or 'none'}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class LoopEndedError(SegueError):
    """A request asked an ended loop to run again.

    Attributes:
        job_id: The job named.
        loop: The loop named.
        status: How the loop ended.
    """

    def __init__(self, job_id: str, loop: str, status: str) -> None:
        self.job_id = job_id
        self.loop = loop
        self.status = status
        super().__init__(
            f"loop {loop!r} of job {job_id} has ended ({status}); it cannot be resumed"
        )


class JobWaitTimeout(SegueError, TimeoutError):
    """A job did not end within the time a caller waited for it (it still runs).

    Attributes:
        job_id: The job waited for.
        timeout: How long the caller waited, in seconds.
    """

    retryable = True

    def __init__(self, job_id: str, timeout: float | None, what: str = "did not finish") -> None:
        self.job_id = job_id
        self.timeout = timeout
        super().__init__(f"job {job_id} {what} within {timeout}s")


class DriverFailed(SegueError, RuntimeError):
    """The engine or coordinator loop driving the job died in this process; the job is
    left to the next engine or coordinator that opens the same store."""

    def __init__(self, why: str) -> None:
        super().__init__(f"the driver failed: {why}")


class BrokerError(SegueError):
    """The broker refused a service's connection or a call (the message names the broker
    and what to check). Not retryable: waiting will not fix it."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached, and what should have gone to it could not be kept
    for later (the message says what and how much waits already)."""

    retryable = True


class ChildProcessDied(SegueError):
    """The process-pool child running a node run died under it (a segfault, an OOM
    kill): the run failed, and its retry policy decides whether it runs again."""

    retryable = True


class MainGuardMissing(SegueError):
    """A process-pool child re-ran a script's top level, which started Segue again:
    the script must start Segue under ``if __name__ == "__main__":``."""


MAIN_GUARD_HELP = (
    "a process-pool child re-ran the main script's top level, which starts Segue "
    "again; put the code that starts Segue (Client.embedded, submit, wait) under "
    'if __name__ == "__main__": in that script'
)
