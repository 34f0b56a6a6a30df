"""Batched recording: many node runs and events per transaction, off the caller's thread.

One transaction per node-run update caps SQLite at a few thousand writes per
second; the embedded engine records far more. :class:`BatchingRecorder`
buffers what it is given and a background thread writes it with
:meth:`Store.record`, one transaction per batch. Runs are written before the
events submitted with them, and batches in submission order, so the store's
first-completion-wins rules see records in the order they were submitted.
Sources registered with :meth:`BatchingRecorder.gather` (the driver's journal)
are asked for their records as each batch is taken: they lead its events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from orchestrator.store.base import EventRecord, RunRecord, Store
from orchestrator.store.errors import RecorderClosed, StoreError

log = logging.getLogger("segue.store")


class BatchingRecorder:
    """Buffers node runs and events and writes them in batches from one thread.

    A failure of the writer is kept and raised by the next :meth:`flush` or
    :meth:`close` (the batch that failed is not retried: the store already
    retried transient errors). Later batches are still attempted.

    Args:
        store: Where to write.
        max_batch: The most runs (or events) written in one transaction; a
            buffer this full is written at once.
        max_delay_s: The longest a submitted record waits before its batch
            is written.
        max_pending: Submitters block while this many records wait to be
            written (bounded memory when the database falls behind).
    """

    def __init__(
        self,
        store: Store,
        max_batch: int = 2000,
        max_delay_s: float = 0.05,
        max_pending: int = 100_000,
    ) -> None:
        if max_batch < 1 or max_pending < 1 or max_delay_s < 0:
            raise ValueError("max_batch and max_pending must be >= 1, max_delay_s >= 0")
        self._store = store
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # wakes the writer
        self._done = threading.Condition(self._lock)  # wakes flush() and blocked submitters
        self._runs: list[RunRecord] = []
        self._events: list[EventRecord] = []
        self._first_at: float | None = None
        self._submitted = 0
        self._written = 0
        self._flush_to = 0
        self._closing = False
        self._error: BaseException | None = None
        self._callbacks: list[tuple[int, Callable[[], None], bool]] = []
        self._sources: list[Callable[[], Callable[[], list[EventRecord]]]] = []
        self._touched = 0  # submissions a source holds, not yet taken
        self._thread = threading.Thread(target=self._run, name="segue-recorder", daemon=True)
        self._thread.start()

    def __enter__(self) -> BatchingRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Records submitted and not yet taken by the writer."""
        with self._lock:
            return len(self._runs) + len(self._events)

    # submitting -------------------------------------------------------------
    def submit_runs(self, runs: Iterable[RunRecord]) -> None:
        """Queue node runs for :meth:`Store.record_runs`; thread-safe."""
        self._submit(list(runs), [])

    def submit_events(self, events: Iterable[EventRecord]) -> None:
        """Queue events for :meth:`Store.append_events`; thread-safe."""
        self._submit([], list(events))

    def submit(self, runs: list[RunRecord], events: list[EventRecord]) -> None:
        """Queue runs and events at once (one hand-over: the lists become the
        recorder's, so the caller must not change them after); thread-safe."""
        self._submit(runs, events)

    def gather(self, source: Callable[[], Callable[[], list[EventRecord]]]) -> None:
        """Call ``source`` (under the recorder's lock: it must be quick and not wait
        on the recorder) as each batch is taken: it takes what it holds and returns
        how to build its records, which the writer calls off the lock; they lead the
        batch's events, in the same transaction. Its owner calls :meth:`touch` for
        each record it holds for the next batch."""
        with self._lock:
            self._sources.append(source)

    def touch(self) -> None:
        """Count one submission a gathered source holds: :meth:`flush` and
        :meth:`when_written` wait for it, and it is written within ``max_delay_s``."""
        self._submit([], [], touched=True)

    def _submit(
        self, runs: list[RunRecord], events: list[EventRecord], touched: bool = False
    ) -> None:
        if not runs and not events and not touched:
            return
        with self._lock:
            pending = len(self._runs) + len(self._events) + self._touched
            while pending >= self._max_pending and self._writer_alive():
                self._done.wait(0.5)
                pending = self._pending()
            if self._closing:
                raise RecorderClosed(
                    f"BatchingRecorder is closed; {len(runs) + len(events)} record(s) "
                    "were not recorded"
                )
            self._runs.extend(runs)
            self._events.extend(events)
            self._touched += touched
            self._submitted += 1
            if self._first_at is None:
                self._first_at = time.monotonic()
                self._work.notify()
            elif pending + len(runs) + len(events) + touched >= self._max_batch:
                self._work.notify()

    def when_written(self, callback: Callable[[], None], even_if_failed: bool = False) -> None:
        """Call ``callback`` once everything submitted before this call is written.

        It runs on the writer's thread (or on the caller's, when nothing is
        waiting), so it must be quick and thread-safe. It is never called if a
        batch it waits for fails: what it would release stays where it is;
        unless ``even_if_failed``: then it is called once that batch was tried.
        """
        with self._lock:
            if self._written < self._submitted:
                self._callbacks.append((self._submitted, callback, even_if_failed))
                return
        callback()

    def expedite(self) -> None:
        """Write what is submitted now, without waiting ``max_delay_s`` for more."""
        with self._lock:
            if self._written < self._submitted:
                self._flush_to = max(self._flush_to, self._submitted)
                self._work.notify()

    # flushing and closing ---------------------------------------------------
    def flush(self) -> None:
        """Block until everything submitted before this call is written.

        Raises:
            Exception: The first error the writer met since the last flush.
        """
        with self._lock:
            target = self._submitted
            if self._written < target:
                self._flush_to = max(self._flush_to, target)
                self._work.notify()
            while self._written < target:
                if not self._thread.is_alive():
                    raise StoreError("BatchingRecorder's writer thread stopped; records were lost")
                self._done.wait(0.5)
            self._raise_kept()

    def close(self) -> None:
        """Write everything submitted, stop the writer, re-raise a kept error.

        Further submissions raise :class:`RecorderClosed`; closing twice is a no-op.
        """
        with self._lock:
            self._closing = True
            self._work.notify()
        self._thread.join()
        with self._lock:
            self._raise_kept()

    def _raise_kept(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    # the writer -------------------------------------------------------------
    def _pending(self) -> int:
        return len(self._runs) + len(self._events) + self._touched

    def _writer_alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    def _due(self) -> bool:
        pending = self._pending()
        if not pending:
            return False
        if pending >= self._max_batch or self._closing or self._flush_to > self._written:
            return True
        assert self._first_at is not None
        return time.monotonic() - self._first_at >= self._max_delay_s

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due():
                    if self._closing and not self._pending():
                        return
                    if self._pending():
                        assert self._first_at is not None
                        self._work.wait(self._first_at + self._max_delay_s - time.monotonic())
                    else:
                        self._work.wait()
                runs, self._runs = self._runs, []
                events, self._events = self._events, []
                builds = [source() for source in self._sources]
                self._touched = 0
                ticket, self._first_at = self._submitted, None
                self._done.notify_all()
            if builds:  # built off the lock: submitters go on meanwhile
                events[:0] = [r for build in builds for r in build()]
            error = self._write(runs, events)
            with self._lock:
                if error is not None and self._error is None:
                    self._error = error
                elif error is not None and self._error is not None:
                    self._error.add_note(f"BatchingRecorder: a later write failed too: {error!r}")
                self._written = ticket
                due = [(c, always) for t, c, always in self._callbacks if t <= ticket]
                self._callbacks = [entry for entry in self._callbacks if entry[0] > ticket]
                self._done.notify_all()
            for callback, always in due:
                if error is not None and not always:
                    continue
                try:
                    callback()
                except Exception:  # the writer goes on; the callback's owner logs
                    log.exception("BatchingRecorder: a when_written callback failed")

    def _write(self, runs: list[RunRecord], events: list[EventRecord]) -> BaseException | None:
        errors: list[BaseException] = []
        size = self._max_batch
        if len(runs) <= size and len(events) <= size:
            try:
                self._store.record(runs, events)
            except Exception as exc:
                counts = ((len(runs), "runs"), (len(events), "events"))
                what = " and ".join(f"{n} {kind}" for n, kind in counts if n)
                return _noted(exc, f"a batch of {what}")
            return None
        for i in range(0, len(runs), size):
            chunk = runs[i : i + size]
            try:
                self._store.record_runs(chunk)
            except Exception as exc:
                errors.append(_noted(exc, f"a batch of {len(chunk)} runs"))
        for i in range(0, len(events), size):
            batch = events[i : i + size]
            try:
                self._store.append_events(batch)
            except Exception as exc:
                errors.append(_noted(exc, f"a batch of {len(batch)} events"))
        if len(errors) > 1:
            errors[0].add_note(f"BatchingRecorder: {len(errors) - 1} more batch(es) failed too")
        return errors[0] if errors else None


def _noted(exc: Exception, what: str) -> Exception:
    exc.add_note(f"BatchingRecorder: {what} was not recorded")
    return exc
