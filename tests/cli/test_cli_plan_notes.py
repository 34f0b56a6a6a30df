"""`segue plan` on a loop that ends itself: the loop's `until` and generation
limit, and the workflow's `Comment` notes, in the tree and in `--json`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app

CONVERGE = Path(__file__).resolve().parents[2] / "examples" / "converge.yaml"
runner = CliRunner()


def test_plan_shows_the_loop_s_until_and_limit_and_the_comment_as_a_note() -> None:
    result = runner.invoke(app, ["plan", str(CONVERGE)], env={"COLUMNS": "240"})

    assert result.exit_code == 0, result.output
    assert "loop k (pool thread, on_error stop, until settled.result, max_iterations 100)" in (
        result.output
    )
    assert "note about: k counts 1, 2, 3, ...;" in result.output
    assert "about (Comment" not in result.output  # a note, not a node that runs


def test_plan_json_keeps_until_in_the_policy_and_lists_the_comments() -> None:
    result = runner.invoke(app, ["plan", str(CONVERGE), "--json"])

    assert result.exit_code == 0
    plan = json.loads(result.output)
    k = next(loop for loop in plan["loops"] if loop["name"] == "k")
    assert (k["policy"]["until"], k["policy"]["max_iterations"]) == ("settled.result", 100)
    assert "about" not in [n["id"] for loop in plan["loops"] for n in loop["nodes"]]
    assert [c["id"] for c in plan["comments"]] == ["about"]
    assert plan["comments"][0]["text"].startswith("k counts 1, 2, 3, ...;")
