"""A journaled run result is an array of its fields (one per run, built and encoded
without a Python step per field); entries written before as objects are read too."""

from __future__ import annotations

import json

import pytest

from orchestrator.driver.journal import body, parse
from orchestrator.results import RunError, RunResult

SUCCEEDED = RunResult(
    "j:main:0:n", 1, "succeeded", {"value": [1, "x"]}, started_at=1.5, finished_at=2.5
)
FAILED = RunResult(
    "j:loop:3:n",
    2,
    "failed",
    error=RunError("ValueError", "bad", True, 'Traceback...\n  File "n.py"\nValueError: bad'),
    worker="w@h:1",
)


@pytest.mark.parametrize("result", [SUCCEEDED, FAILED], ids=["succeeded", "failed"])
def test_a_result_round_trips_through_its_json_array(result: RunResult) -> None:
    item = body(result)
    assert isinstance(item, list) and item[0] == "finished"
    assert parse(json.loads(json.dumps(item))) == result


def test_a_result_journaled_as_an_object_before_is_read() -> None:
    assert parse({"type": "finished", **FAILED.to_json()}) == FAILED


def test_an_array_of_the_wrong_shape_is_refused_naming_the_entry() -> None:
    with pytest.raises(ValueError, match=r"entry 7.*array of 3 items"):
        parse(["finished", "j:main:0:n", 1], "journal entry 7")
    with pytest.raises(ValueError, match="run result"):
        parse(["finished", 12, "x", *([None] * 10)])
