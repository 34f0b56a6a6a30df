"""A process that runs a queue handoff over a real broker and dies at its first
acknowledgement, for tests of what the next driver makes of it.

``python -m tests.support.queue_job HOME BROKER PREFIX TALLY N MODE`` submits
a job to an embedded engine whose queue backend is a
:class:`~orchestrator.queues.KombuQueueBackend` on ``BROKER`` under ``PREFIX``:
loop ``items`` (Range 0..N) writes queue ``q``, loop ``take`` reads it into
``tally`` (which appends its run id to ``TALLY`` at every execution) and the
list output ``got``. The store's journal lags (every write of events takes
``JOURNAL_LAG_S``), as a loaded database's would. The process prints
``{"job": id}`` and SIGKILLs itself at its first queue acknowledgement:
right after it reached the broker (MODE ``after-ack``) or instead of it
(``instead-of-ack``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import Workflow
from orchestrator.artifacts import open_artifacts
from orchestrator.engine.engine import Engine
from orchestrator.queues import KombuQueueBackend
from orchestrator.store import open_store
from orchestrator.store.base import EventRecord
from tests.support.embedded_job import registry

JOURNAL_LAG_S = 0.3
MODES = ("after-ack", "instead-of-ack")


def workflow(tally: Path, n: int) -> Workflow:
    """``items`` (Range 0..n) -> queue ``q`` -> ``take`` -> ``tally`` -> ``got``."""
    return Workflow.from_dict(
        {
            "name": "handoff",
            "nodes": [
                {"id": "items", "type": "Range", "config": {"stop": n}},
                {"id": "push", "type": "QueueWriter", "config": {"queue": "q"}},
                {"id": "take", "type": "QueueReader", "config": {"queue": "q"}},
                {"id": "tally", "type": "Tally", "config": {"path": str(tally)}},
                {"id": "got", "type": "Output", "config": {"name": "got"}},
            ],
            "edges": [
                {"from": "items.value", "to": "push.value"},
                {"from": "take.item", "to": "tally.value"},
                {"from": "tally.value", "to": "got.value"},
            ],
        }
    )


class DyingAtFirstAck(KombuQueueBackend):
    """Kills its process at the first acknowledgement (see the module's MODE)."""

    def __init__(self, url: str, prefix: str, mode: str) -> None:
        super().__init__(url, prefix)
        self.mode = mode

    def ack(self, queue: str, group: str, message_id: str) -> None:
        if self.mode == "after-ack":
            super().ack(queue, group, message_id)
        os.kill(os.getpid(), signal.SIGKILL)


def main(home: str, broker: str, prefix: str, tally: str, n: str, mode: str) -> None:
    assert mode in MODES, mode
    store = open_store(None, Path(home))
    append = store.append_events

    def lagging(events: list[EventRecord]) -> Any:
        time.sleep(JOURNAL_LAG_S)
        return append(events)

    store.append_events = lagging  # type: ignore[method-assign]
    engine = Engine(
        store,
        open_artifacts(str(Path(home) / "artifacts")),
        registry(),
        queues=DyingAtFirstAck(broker, prefix, mode),
    )
    job_id = engine.submit(workflow(Path(tally), int(n)))
    print(json.dumps({"job": job_id}), flush=True)
    engine.wait(job_id, timeout=60)
    sys.exit("the job ended without a queue acknowledgement")


if __name__ == "__main__":
    main(*sys.argv[1:7])
