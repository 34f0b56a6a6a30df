"""``segue worker --gpu``: one worker process per GPU (DESIGN section 7).

The supervisor finds the devices (:mod:`workers.gpu.devices`: NVML, or torch
in a child process) and starts one ``segue worker --gpu`` process per device
with ``CUDA_VISIBLE_DEVICES`` naming it, set before that process can start
CUDA. It never starts CUDA itself, and refuses to start worker processes if
something in it did: a CUDA context does not survive into a child, and a
parent holding one must not hand children anything. Worker processes are
started fresh (``subprocess``), never forked from it.

SIGTERM and SIGINT go on to every worker process, and the supervisor waits for
them and exits 0. A worker process that stops by itself is started again on
its device (the same ``CUDA_VISIBLE_DEVICES``) after a backoff; a device whose
process keeps crashing is given up, with a log line naming the device, and the
others serve on (:mod:`workers.gpu.restarts`). When every device has been
given up the supervisor exits with the last crash's code, for the container
(or the operator's supervisor) to see.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from workers.gpu.restarts import RestartPolicy
from workers.gpu.serving import GpuPlan

log = logging.getLogger("segue.worker.gpu")
STOP_GRACE_S = 120.0
"""How long stopping worker processes may take before they are killed."""
DEFAULT_RESTARTS = RestartPolicy()
"""1 s before a restart, doubling to 30 s; a device given up after 5 crashes in 5 minutes."""
POLL_S = 0.2
"""How often the supervisor looks at its worker processes."""


class CudaStartedInParent(RuntimeError):
    """CUDA was initialised in a process about to start GPU worker processes."""


def cuda_started() -> bool:
    """Whether this process initialised CUDA (torch is never imported to find out)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


@dataclass
class _Slot:
    """One device's worker process, and its crashes."""

    plan: GpuPlan
    command: list[str]
    child: subprocess.Popen[bytes] | None = None
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None
    given_up: bool = False
    code: int = 0

    @property
    def where(self) -> str:
        device = self.plan.device
        return f"GPU {device.index} ({device.name})" if device else "the CPU"

    def start(self) -> None:
        self.child = subprocess.Popen(self.command, env={**os.environ, **self.plan.env()})
        self.restart_at = None
        log.info("GPU worker process %d serves %s", self.child.pid, self.where)


def supervise(
    plans: Sequence[GpuPlan],
    worker_args: Callable[[int, GpuPlan], list[str]],
    *,
    cuda_check: Callable[[], bool] = cuda_started,
    program: Sequence[str] = (sys.executable, "-m", "orchestrator.cli", "worker"),
    restarts: RestartPolicy = DEFAULT_RESTARTS,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run one worker process per plan until stopped; returns the exit code.

    ``worker_args(i, plan)``: the ``segue worker`` arguments of the i-th process;
    ``program`` the command they follow.

    Raises:
        CudaStartedInParent: This process initialised CUDA: no child is started.
    """
    if cuda_check():
        raise CudaStartedInParent(
            "CUDA was initialised in the process that starts the GPU worker processes; "
            "it must not start children after that. Start `segue worker --gpu` in a fresh "
            "process, and import no CUDA code before it"
        )
    slots = [_Slot(plan, [*program, *worker_args(i, plan)]) for i, plan in enumerate(plans)]
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for slot in slots:
            if slot.child is not None and slot.child.poll() is None:
                slot.child.send_signal(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slot in slots:
            slot.start()
        return _watch(slots, stopping, restarts, clock)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all([slot.child for slot in slots if slot.child is not None], signal.SIGTERM)


def _watch(
    slots: list[_Slot], stopping: list[int], restarts: RestartPolicy, clock: Callable[[], float]
) -> int:
    while not stopping:
        now = clock()
        for slot in slots:
            if slot.child is not None and (code := slot.child.poll()) is not None:
                _crashed(slot, code, now, restarts)
            elif slot.restart_at is not None and now >= slot.restart_at and not stopping:
                slot.start()
        if all(slot.given_up for slot in slots):
            log.error("every GPU worker process was given up; the supervisor stops")
            return max(abs(slot.code) for slot in slots) or 1
        time.sleep(POLL_S)
    return 0


def _crashed(slot: _Slot, code: int, now: float, restarts: RestartPolicy) -> None:
    pid = slot.child.pid if slot.child is not None else 0
    slot.child, slot.code = None, code
    slot.crashes = restarts.recent([*slot.crashes, now], now)
    if restarts.gives_up(slot.crashes, now):
        slot.given_up = True
        log.error(
            "giving up on %s: its worker process crashed %d times within %.0f s (last: "
            "process %d, exit code %s); the other devices serve on. See the process's log "
            "above, fix the device or its driver, and restart `segue worker --gpu`",
            slot.where,
            len(slot.crashes),
            restarts.window_s,
            pid,
            code,
        )
        return
    delay = restarts.delay(slot.crashes, now)
    slot.restart_at = now + delay
    log.warning(
        "the worker process %d serving %s stopped by itself (exit code %s); starting it "
        "again in %.1f s (crash %d of %d allowed within %.0f s)",
        pid,
        slot.where,
        code,
        delay,
        len(slot.crashes),
        restarts.max_crashes,
        restarts.window_s,
    )


def _stop_all(children: list[subprocess.Popen[bytes]], signum: int) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signum)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
