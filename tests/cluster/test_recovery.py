"""Killing processes loses nothing: DESIGN sections 3 (identity, exactly-once recording) and 5.

A SIGKILLed worker's task comes back (late acknowledgement) and is recorded
once; a SIGKILLed coordinator's jobs are taken over by the next one, which
replays their journal and never re-runs a node that succeeded.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from orchestrator import Client, Job, Workflow
from orchestrator.store import open_store
from tests.support.cluster import Cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]


def _loop(sink: Path, items: int, nap: float) -> Workflow:
    return Workflow.loads(
        f"""
        name: recovery
        nodes:
          - {{id: ticks, type: Range, config: {{stop: {items}}}}}
          - {{id: nap, type: Sleep, config: {{seconds: {nap}}}}}
          - {{id: total, type: Math, config: {{op: add}}}}
          - {{id: log, type: JsonlSink, config: {{path: "{sink}"}}}}
          - {{id: sums, type: Output, config: {{name: sums}}}}
        edges:
          - {{from: ticks.value, to: nap.value}}
          - {{from: nap.value, to: total.a}}
          - {{from: total.result, to: total.b, feedback: true, initial: 0}}
          - {{from: total.result, to: sums.value}}
          - {{from: total.result, to: log.value}}
        """
    )


def _running_sums(items: int) -> list[int]:
    sums, total = [], 0
    for i in range(items):
        total += i
        sums.append(total)
    return sums


def _await_iterations(client: Client, job: Job, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        loops = {loop.name: loop for loop in client.loops(job.id)}
        if "ticks" in loops and loops["ticks"].iterations >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job.id} did not reach {at_least} iterations")


def _executions(cluster: Cluster, job: Job) -> Counter[str]:
    """How many times workers ran each of the job's runs to success (from their logs)."""
    pattern = re.compile(
        r"Task segue\.node\.\w+\[(" + job.id + r":[^\]]+)\] succeeded .*: 'succeeded'"
    )
    text = (cluster.root / "thread.log").read_text(errors="replace")
    return Counter(pattern.findall(text))


def _handed_on(cluster: Cluster, job: Job) -> None:
    """A coordinator stopped with SIGTERM (a rolling restart) exits cleanly, leaving
    its job running, not cancelled, with its lease ended for the next one."""
    assert cluster.processes["coordinator"].wait(timeout=30) == 0
    store = open_store(cluster.database_url, cluster.root / "home")
    try:
        record = store.get_job(job.id)
    finally:
        store.close()
    assert record is not None and record.status == "running"
    assert record.lease_until is not None and record.lease_until <= time.time()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_coordinator_killed_or_stopped_mid_job_is_replaced_and_no_succeeded_node_runs_again(
    fragile_cluster: Cluster, tmp_path: Path, sig: signal.Signals
) -> None:
    sink = tmp_path / "sums.jsonl"
    with fragile_cluster.client() as client:
        job = client.submit(_loop(sink, items=20, nap=0.1))
        _await_iterations(client, job, at_least=5)

        fragile_cluster.kill("coordinator", sig)
        if sig == signal.SIGTERM:
            _handed_on(fragile_cluster, job)
        fragile_cluster.start("coordinator")
        fragile_cluster.wait_ready("coordinator")
        result = job.wait(timeout=90)

        assert result.status == "completed", result.error
        assert result.outputs == {"sums": _running_sums(20)}
        assert result.loops["ticks"].iterations == 20
        runs = client.runs(job.id)
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.status for r in runs} == {"succeeded"}
    assert Counter(r.node for r in runs) == {
        "ticks": 20,
        "nap": 20,
        "total": 20,
        "log": 20,
        "sums": 20,
    }
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert sorted(line["run"] for line in lines) == sorted(
        f"{job.id}:ticks:{i}:log" for i in range(20)
    )
    executions = _executions(fragile_cluster, job)
    assert executions and max(executions.values()) == 1, executions.most_common(3)


def test_a_worker_killed_mid_run_loses_no_node_and_records_none_twice(
    fragile_cluster: Cluster, tmp_path: Path
) -> None:
    sink = tmp_path / "sums.jsonl"
    with fragile_cluster.client() as client:
        job = client.submit(_loop(sink, items=6, nap=1.5))
        deadline = time.monotonic() + 30
        while not any(r.node == "nap" and r.status == "running" for r in client.runs(job.id)):
            assert time.monotonic() < deadline, "no nap run started"
            time.sleep(0.05)

        fragile_cluster.kill("thread", signal.SIGKILL)  # mid-run: the nap is sleeping
        fragile_cluster.start("thread")
        fragile_cluster.wait_ready("thread")
        result = job.wait(timeout=120)

        assert result.status == "completed", result.error
        assert result.outputs == {"sums": _running_sums(6)}
        runs = client.runs(job.id)
    assert len({r.run_id for r in runs}) == len(runs) == 6 * 5
    assert {r.status for r in runs} == {"succeeded"}
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert len(lines) == len({line["run"] for line in lines}) == 6


def test_two_live_coordinators_each_get_the_results_of_the_jobs_they_drive(
    fragile_cluster: Cluster,
) -> None:
    # Results travel on each job's own queue: a coordinator never takes (and drops)
    # a result of a job the other drives, which only reconciling would recover.
    flow = Workflow.loads(
        """
        name: pair
        nodes:
          - {id: one, type: Constant, config: {value: 1}}
          - {id: a, type: Sleep, config: {seconds: 0.2}}
          - {id: b, type: Sleep, config: {seconds: 0.2}}
          - {id: out, type: Output, config: {name: out}}
        edges:
          - {from: one.value, to: a.value}
          - {from: a.value, to: b.value}
          - {from: b.value, to: out.value}
        """
    )
    fragile_cluster.start("coordinator-b")
    fragile_cluster.wait_ready("coordinator-b")
    store = open_store(fragile_cluster.database_url, fragile_cluster.root / "home")
    owners: dict[str, str | None] = {}
    with fragile_cluster.client() as client:
        jobs = []
        while len(set(owners.values())) < 2:  # until both coordinators drive a job
            assert len(jobs) < 12, f"one coordinator took every job: {owners}"
            jobs.append(client.submit(flow))
            deadline = time.monotonic() + 10
            while (record := store.get_job(jobs[-1].id)) is None or record.owner is None:
                assert time.monotonic() < deadline, "no coordinator adopted the job"
                time.sleep(0.02)
            owners[record.id] = record.owner
        results = [job.wait(timeout=60) for job in jobs]
    store.close()
    assert [r.outputs for r in results] == [{"out": 1}] * len(jobs)
    for name in ("coordinator", "coordinator-b"):
        log = (fragile_cluster.root / f"{name}.log").read_text(errors="replace")
        assert "never reported" not in log, log[-2000:]
