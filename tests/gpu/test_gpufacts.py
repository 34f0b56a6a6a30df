"""GPU facts read from recorded ``gpu`` events and GPU workers' heartbeats."""

from __future__ import annotations

from typing import Any

from orchestrator.gpufacts import gpu_summary, gpu_waits, live_gpus
from orchestrator.metrics.families import families
from orchestrator.metrics.snapshot import Snapshot
from orchestrator.store.base import EventRecord, ProcessRecord

NOW = 1000.0


def gpu_event(node: str, peak: float | None, device: str = "NVIDIA L4") -> EventRecord:
    data = {"device": "cuda:0", "device_name": device, "peak_mb": peak, "vram_mb": 512}
    return EventRecord(job_id="j", kind="gpu", at=NOW, node=node, data=data)


def worker(name: str, gpu: dict[str, Any], beat_at: float = NOW) -> ProcessRecord:
    return ProcessRecord(
        name=name,
        kind="worker",
        host="h",
        pid=1,
        started_at=0.0,
        holds=(),
        queues=("gpu",),
        beat_at=beat_at,
        info={"gpu": gpu},
    )


def test_a_jobs_gpu_runs_are_summed_per_node_with_devices_and_peaks() -> None:
    events = [
        gpu_event("embed", 300.0),
        gpu_event("embed", 420.5, "NVIDIA A100"),
        gpu_event("embed", 100.0),
        gpu_event("mm", None),
        EventRecord(job_id="j", kind="preview", at=NOW, node="embed", data={}),
    ]
    summary = gpu_summary(events)
    assert summary["embed"] == {
        "runs": 3,
        "devices": ["NVIDIA L4", "NVIDIA A100"],
        "peak_mb_max": 420.5,
        "peak_mb_last": 100.0,
    }
    assert summary["mm"]["peak_mb_max"] is None


def test_a_node_waits_only_when_it_needs_more_than_the_largest_live_gpu() -> None:
    gpus = live_gpus(
        [
            worker("gpu-a@h:1", {"index": 0, "usable_mb": 7000}),
            worker("gpu-b@h:2", {"index": 1, "usable_mb": 30000}, beat_at=NOW - 60),  # silent
        ],
        NOW,
        15.0,
    )
    assert gpu_waits({"small": 512, "big": 9000, "undeclared": 0}, gpus) == {
        "big": "waits for a GPU: needs 9000 MiB (vram_mb), and the largest live GPU offers 7000 MiB"
    }
    assert "no live GPU worker" in gpu_waits({"big": 9000}, [])["big"]
    # A worker serving the gpu queue on the CPU takes any run.
    assert gpu_waits({"big": 9000}, [{"device": "cpu"}]) == {}


def test_metrics_give_each_live_devices_memory_peak_and_runs() -> None:
    gpu = {
        "index": 1,
        "name": "NVIDIA L4",
        "total_mb": 23034,
        "free_mb": 22000,
        "usable_mb": 22010,
        "runs": 7,
        "last_peak_mb": 512.0,
        "worker": "segue-gpu-1-abc@node7:42",
        "host": "node7",
    }
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families(Snapshot(gpus=[gpu]))
        for s in family.samples
    }
    labels = (("device", "1:NVIDIA L4"), ("host", "node7"))
    assert samples[("segue_gpu_memory_bytes", (*labels, ("kind", "free")))] == 22000 * 2**20
    assert samples[("segue_gpu_run_peak_bytes", labels)] == 512 * 2**20
    assert samples[("segue_gpu_runs_total", labels)] == 7
