"""A job's state is a function of its plan and its journal (STYLE habit 1): replaying
a recorded journal gives the recorded decisions, one by one, and the job's outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.driver import INPUT_KIND
from orchestrator.driver.journal import entry, event_of
from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import CancelJob, LoopControl, Resend, Start, Tick
from orchestrator.states import DesiredLoopState
from orchestrator.store.base import EventRecord
from tests.driver.journals import HERE, RECORDED, decisions, record

FIXTURES = sorted(HERE.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(path.read_text())
    return fixture


def test_every_recorded_example_has_a_fixture() -> None:
    assert sorted(p.stem for p in FIXTURES) == sorted(RECORDED)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_replaying_a_recorded_journal_makes_the_recorded_decisions(path: Path) -> None:
    fixture = load(path)

    replayed = decisions(fixture)

    recorded = fixture["decisions"]
    for i, (now, then) in enumerate(zip(replayed, recorded, strict=False)):
        assert now == then, f"{path.stem}: decision {i} changed"
    assert len(replayed) == len(recorded)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_replayed_journal_ends_the_job_with_the_outputs_it_had(path: Path) -> None:
    fixture = load(path)

    ending = [d for d in decisions(fixture) if "job" in d][-1]

    assert ending["job"] == "completed"
    assert ending["outputs"] == fixture["outputs"]


@pytest.mark.parametrize(
    "event",
    [
        Start(),
        Tick(),
        CancelJob("cancelled by request"),
        LoopControl("ticks", DesiredLoopState.PAUSED),
        Resend(("j:ticks:3:node",)),
        Resend(),
        RunResult("j:main:0:a", 2, "failed", {}, RunError("ValueError", "no", retryable=False)),
        RunResult("j:main:0:g.1.a", 1, "failed", None, RunError("E", "x", True, "Traceback …")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_scheduler_input_survives_its_journal_entry(event: object) -> None:
    record = entry("j", event, 12.5)  # type: ignore[arg-type]

    assert record is not None
    assert event_of(record) == event


def test_a_result_journaled_before_errors_were_structured_replays_as_one() -> None:
    old = {
        "type": "finished",
        "run_id": "j:items:0:flaky",
        "attempt": 1,
        "status": "failed",
        "outputs": None,
        "error": "NodeError: fails attempt 1",
        "retryable": False,
        "exhausted": False,
        "worker": "embedded",
    }

    event = event_of(EventRecord(job_id="j", kind=INPUT_KIND, at=1.0, data=old, seq=1))

    assert event == RunResult(
        "j:items:0:flaky",
        1,
        "failed",
        None,
        RunError("NodeError", "fails attempt 1", retryable=False),
        worker="embedded",
    )


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_a_journal_written_now_gathers_its_steps_and_replays_to_the_job_s_end(
    name: str, tmp_path: Path
) -> None:
    """The driver gathers the inputs given between two writes into one entry per
    job; replaying such entries ends the job as it ended."""
    fixture = record(name, tmp_path)

    entries = [e["data"] for e in fixture["journal"]]
    steps = sum(len(e["steps"]) for e in entries)
    assert all(e["type"] == "steps" for e in entries)
    assert steps > len(entries), f"{name}: {steps} steps in {len(entries)} entries"
    ending = [d for d in fixture["decisions"] if "job" in d][-1]
    assert ending["job"] == "completed"
    assert ending["outputs"] == fixture["outputs"]
