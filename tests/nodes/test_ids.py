"""A node run's id (DESIGN 3, "Identity"): ``{job}:{loop}:{iteration}:{node}``, built
and read by one type, whatever the node's path inside groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes import RunContext, RunId, run_id
from orchestrator import Client, Workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    "parts",
    [
        RunId("3f2a9c0d1e4b5a6f", "main", 0, "square"),
        RunId("j", "ticks", 41, "sink"),
        RunId("j", "main", 0, "squares.3.sq"),  # a group's child: its path has dots
        RunId("j", "batches", 7, "outer.2.inner.0.nap"),  # a group inside a group
    ],
    ids=str,
)
def test_a_run_id_reads_back_into_the_parts_it_was_built_from(parts: RunId) -> None:
    text = str(parts)

    assert text == f"{parts.job}:{parts.loop}:{parts.iteration}:{parts.node}"
    assert RunId.parse(text) == parts
    assert RunId.job_of(text) == parts.job
    assert RunId.node_of(text) == parts.node
    assert text.startswith(RunId.prefix(parts.job, parts.loop, parts.iteration))


def test_the_sdk_builds_a_contexts_run_id_with_the_same_type() -> None:
    ctx = RunContext.for_run("j", "ticks", 3, "group.1.node")

    assert ctx.run_id == run_id("j", "ticks", 3, "group.1.node") == "j:ticks:3:group.1.node"
    assert RunId.parse(ctx.run_id) == ("j", "ticks", 3, "group.1.node")


@pytest.mark.parametrize(
    "text",
    ["", "job", "job:main:0", "job:main:zero:node", "job:main:0:", ":main:0:node", "job::0:n"],
)
def test_a_malformed_run_id_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=r"run id .* is not \{job\}:\{loop\}:\{iteration\}"):
        RunId.parse(text)


def test_every_recorded_run_of_a_group_job_parses_into_its_job_loop_and_node_path(
    tmp_path: Path,
) -> None:
    with Client.embedded(tmp_path / "home") as client:
        job = client.submit(Workflow.load(EXAMPLES / "group-map.yaml"))
        assert job.wait(timeout=30).status == "completed"
        runs = job.runs()

    children = [r for r in runs if r.node.startswith("squares.")]
    assert {r.node for r in children} >= {f"squares.{i}.sq" for i in range(5)}
    for run in runs:
        assert RunId.parse(run.run_id) == (job.id, run.loop, run.iteration, run.node)
        assert str(RunId(job.id, run.loop, run.iteration, run.node)) == run.run_id
