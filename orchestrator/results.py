"""One node run attempt's outcome, in one shape from the runner to the store.

The runner returns a :class:`RunResult`; the executors carry it (as its JSON
over a process pool, the broker's results channel and the journal); the
scheduler decides on it; a takeover or a redelivered task builds one from the
stored run (:meth:`RunResult.from_record`). A failure is a :class:`RunError`:
the exception's type and message, whether it may be retried, and its
traceback.

Named tuples, not models: the embedded engine makes one per run, and
validating each would cost more than many runs. Values crossing a process
are validated once, by :meth:`RunResult.from_json`.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

RESULT_STATUSES = frozenset({"succeeded", "cached", "failed"})
"""What an attempt ends as: outputs made, outputs reused from the cache, or an error."""


def format_exception(exc: BaseException) -> str:
    """The traceback of ``exc`` as text."""
    return "".join(tb.format_exception(exc))


class RunError(NamedTuple):
    """Why an attempt failed.

    Attributes:
        type: The exception's class name.
        message: The exception's message.
        retryable: False when retrying cannot help (e.g. ``FatalNodeError``).
        traceback: The formatted traceback, for operators (``None`` when the
            failure raised nothing: a timeout, a run recorded before tracebacks were).
    """

    type: str
    message: str
    retryable: bool = True
    traceback: str | None = None

    def __str__(self) -> str:
        """``Type: message``, as runs and jobs record an error."""
        return f"{self.type}: {self.message}" if self.type else self.message

    @classmethod
    def of(cls, exc: BaseException, traceback: str | None = None) -> RunError:
        """The error an exception raised by a run makes, with ``traceback`` (by
        default the exception's own, formatted).

        An exception whose ``retryable`` attribute is false (``FatalNodeError``)
        is not retried.
        """
        return cls(
            type(exc).__name__,
            str(exc),
            bool(getattr(exc, "retryable", True)),
            format_exception(exc) if traceback is None else traceback,
        )

    @classmethod
    def parse(cls, text: str, retryable: bool = True, traceback: str | None = None) -> RunError:
        """The error recorded as the text ``Type: message`` (:meth:`__str__` reversed)."""
        kind, sep, message = text.partition(": ")
        if not sep or not kind.isidentifier():
            return cls("", text, retryable, traceback)
        return cls(kind, message, retryable, traceback)

    def to_json(self) -> dict[str, Any]:
        """``{"type", "message"}``, with ``retryable`` when false and ``traceback`` when known."""
        data: dict[str, Any] = {"type": self.type, "message": self.message}
        if not self.retryable:
            data["retryable"] = False
        if self.traceback is not None:
            data["traceback"] = self.traceback
        return data

    @classmethod
    def from_json(cls, data: Any) -> RunError:
        """The error :meth:`to_json` made (or ``Type: message`` text, as journals
        written before errors were structured hold).

        Raises:
            ValueError: ``data`` is neither.
        """
        if isinstance(data, str):
            return cls.parse(data)
        if not isinstance(data, Mapping):
            raise ValueError(f"a run error is an object, not {type(data).__name__}")
        kind, message, trace = data.get("type"), data.get("message"), data.get("traceback")
        if not isinstance(kind, str) or not isinstance(message, str):
            raise ValueError("a run error needs a string 'type' and 'message'")
        if trace is not None and not isinstance(trace, str):
            raise ValueError("a run error's 'traceback' is text")
        return cls(kind, message, bool(data.get("retryable", True)), trace)


class StoredRun(Protocol):
    """What :meth:`RunResult.from_record` reads of a stored run (a store ``RunRecord``)."""

    @property
    def run_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def outputs(self) -> Mapping[str, Any] | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def traceback(self) -> str | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def worker(self) -> str | None: ...


class RunResult(NamedTuple):
    """The outcome of one attempt of one node run.

    Attributes:
        status: ``succeeded``, ``cached`` (outputs reused) or ``failed``.
        outputs: Output port values (JSON) when it succeeded.
        error: Why it failed.
        cursor: The producer's next cursor (``produce`` only).
        exhausted: The producer had no more items (``produce`` only).
        idle: A queue reader found no message yet (``produce`` only).
        delivery: The queue message to acknowledge when the iteration ends.
        worker: Where it ran.
    """

    run_id: str
    attempt: int
    status: str
    outputs: dict[str, Any] | None = None
    error: RunError | None = None
    cursor: Any = None
    exhausted: bool = False
    idle: bool = False
    delivery: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the attempt produced outputs."""
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        """The result as JSON; fields at their defaults are left out (most results
        carry few), the error as :meth:`RunError.to_json`."""
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "status": self.status,
        }
        for name, value, default in zip(_OPTIONAL, self[3:], _OPTIONAL_DEFAULTS, strict=True):
            if value is not default and value != default:
                data[name] = value
        if self.error is not None:
            data["error"] = self.error.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        """The result :meth:`to_json` made.

        Also reads the shapes written before results had one type: a journal's
        ``"error": "Type: message"`` with a separate ``retryable`` flag, and a
        wire result with every field present.

        Raises:
            ValueError: ``data`` is not a run result (a name in the message).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a run result is an object, not {type(data).__name__}")
        fields = dict(data)
        retryable = fields.pop("retryable", True)
        error = fields.get("error")
        if error is not None:
            error = RunError.from_json(error)
            if isinstance(data["error"], str):
                error = error._replace(retryable=bool(retryable))
            fields["error"] = error
        unknown = fields.keys() - _FIELD_SET
        if unknown:
            raise ValueError(f"a run result has no field {sorted(unknown)[0]!r}")
        try:
            result = cls(**fields)
        except TypeError as exc:
            raise ValueError(f"not a run result: {exc}") from None
        if not isinstance(result.run_id, str) or type(result.attempt) is not int:
            raise ValueError("a run result needs a string 'run_id' and an integer 'attempt'")
        if result.status not in RESULT_STATUSES:
            raise ValueError(f"a run result's status is one of {sorted(RESULT_STATUSES)}")
        if result.outputs is not None and not isinstance(result.outputs, dict):
            raise ValueError("a run result's 'outputs' is an object")
        return result

    @classmethod
    def from_record(cls, record: StoredRun) -> RunResult:
        """The result a finished run's stored record holds: the one conversion from
        the store, for a takeover answering a lost run and a redelivered task.

        A run recorded failed (or ended otherwise: skipped, cancelled) is not
        retried again: its attempts were spent or it was settled.
        """
        status = record.status if record.status in ("succeeded", "cached") else "failed"
        error = None
        if status == "failed":
            text = record.error or f"RunEnded: the run was recorded {record.status}"
            error = RunError.parse(text, retryable=False, traceback=record.traceback)
        return cls(
            record.run_id,
            record.attempt,
            status,
            dict(record.outputs or {}),
            error,
            started_at=record.started_at,
            finished_at=record.finished_at,
            worker=record.worker,
        )


_FIELDS = RunResult._fields
_FIELD_SET = frozenset(_FIELDS)
_OPTIONAL = _FIELDS[3:]
"""The fields after ``status`` (``run_id``, ``attempt`` and ``status`` have no default)."""
_OPTIONAL_DEFAULTS = tuple(RunResult._field_defaults[name] for name in _OPTIONAL)
