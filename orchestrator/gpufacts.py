"""What a job's GPU runs tell, and why a GPU run waits: pure functions over
recorded ``gpu`` events and the heartbeats of GPU workers (DESIGN section 7).

A GPU worker reports each run's device and peak memory as a ``gpu`` event
(stored with the job's events) and announces its device in its heartbeat
(``info["gpu"]``). ``segue jobs show``, node health and metrics read them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.liveness import alive
from orchestrator.store.base import EventRecord, ProcessRecord

GPU_EVENT = "gpu"
"""The kind of event a GPU run's facts are recorded as."""


def gpu_summary(events: Iterable[EventRecord]) -> dict[str, dict[str, Any]]:
    """Per node: GPU runs, the devices they ran on, and their peak memory
    (largest and latest, MiB; None where no CUDA device measured it)."""
    nodes: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.kind != GPU_EVENT or event.node is None:
            continue
        data = event.data if isinstance(event.data, Mapping) else {}
        entry = nodes.setdefault(
            event.node, {"runs": 0, "devices": [], "peak_mb_max": None, "peak_mb_last": None}
        )
        entry["runs"] += 1
        device = str(data.get("device_name") or data.get("device") or "?")
        if device not in entry["devices"]:
            entry["devices"].append(device)
        peak = data.get("peak_mb")
        if isinstance(peak, int | float):
            entry["peak_mb_last"] = peak
            top = entry["peak_mb_max"]
            entry["peak_mb_max"] = peak if top is None else max(top, peak)
    return nodes


def live_gpus(
    processes: Iterable[ProcessRecord], now: float, timeout_s: float
) -> list[dict[str, Any]]:
    """The devices live GPU worker processes announce (``info["gpu"]``), with the
    worker's name; a worker serving the gpu queue on the CPU offers no device."""
    found = []
    for process in processes:
        gpu = process.info.get("gpu")
        if isinstance(gpu, dict) and alive(process, now, timeout_s):
            found.append({**gpu, "worker": process.name, "host": process.host})
    return found


def gpu_waits(waiting_vram: Mapping[str, int], gpus: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Per node with runs waiting: why no live GPU worker takes them, when their
    declared ``vram_mb`` exceeds what the largest live GPU offers (a worker
    serving the gpu queue on the CPU takes any; an embedded engine's GPU serves
    no queue)."""
    gpus = [gpu for gpu in gpus if not gpu.get("embedded")]
    if any("usable_mb" not in gpu for gpu in gpus):
        return {}
    offers = [int(gpu["usable_mb"]) for gpu in gpus]
    largest = max(offers, default=None)
    reasons = {}
    for node, vram_mb in waiting_vram.items():
        if vram_mb <= 0 or (largest is not None and vram_mb <= largest):
            continue
        offered = (
            "no live GPU worker announces a device"
            if largest is None
            else f"the largest live GPU offers {largest} MiB"
        )
        reasons[node] = f"waits for a GPU: needs {vram_mb} MiB (vram_mb), and {offered}"
    return reasons
