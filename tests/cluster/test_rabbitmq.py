"""A smoke subset of the conformance suite on a RabbitMQ broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from tests.support.cluster import Cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("example", "outputs"),
    [
        ("quickstart", {"total": 15, "message": "n squared plus 2n is 15"}),
        ("running-sum", {"sums": [1, 3, 6, 10, 15], "final": 15}),
        ("two-loops-queue", {"labels": [f"reading {10 * i}" for i in range(5)]}),
        ("group-map", {"squares": [1, 4, 9, 16, 25]}),
        ("retries", {"kept": [1, 2, 4, 5]}),
    ],
)
def test_examples_give_the_same_outputs_on_rabbitmq(
    rabbit_cluster: Cluster, example: str, outputs: dict[str, object]
) -> None:
    with rabbit_cluster.client() as client:
        result = client.submit(Workflow.load(EXAMPLES / f"{example}.yaml")).wait(timeout=60)
    assert result.status == "completed", result.error
    assert result.outputs == outputs


def test_a_loop_pauses_and_resumes_through_rabbitmq(rabbit_cluster: Cluster) -> None:
    workflow = Workflow.loads(
        """
        name: paced
        nodes:
          - {id: ticks, type: Range, config: {stop: 30, interval_s: 0.05}}
          - {id: out, type: Output, config: {name: ticks}}
        edges:
          - {from: ticks.value, to: out.value}
        """
    )
    with rabbit_cluster.client() as client:
        job = client.submit(workflow)
        for event in job.events(timeout=30):
            if event.kind == "run" and event.node == "out":
                break
        client.pause_loop(job.id, "ticks")
        for event in job.events(timeout=30):
            if event.kind == "loop" and event.loop == "ticks" and event.status == "paused":
                break
        client.resume_loop(job.id, "ticks")
        result = job.wait(timeout=60)
    assert result.status == "completed"
    assert result.outputs == {"ticks": list(range(30))}
