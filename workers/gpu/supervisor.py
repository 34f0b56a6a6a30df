"""``segue worker --gpu``: one worker process per GPU (DESIGN section 7).

The supervisor finds the devices (:mod:`workers.gpu.devices`: NVML, or torch
in a child process) and starts one ``segue worker --gpu`` process per device
with ``CUDA_VISIBLE_DEVICES`` naming it, set before that process can start
CUDA. It never starts CUDA itself, and refuses to start worker processes if
something in it did: a CUDA context does not survive into a child, and a
parent holding one must not hand children anything. Worker processes are
started fresh (``subprocess``), never forked from it.

SIGTERM and SIGINT go on to every worker process, and the supervisor waits for
them. When one stops by itself the supervisor stops the others and exits with
that process's code, so the container (or the operator's supervisor)
restarts the set.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from workers.gpu.serving import GpuPlan

log = logging.getLogger("segue.worker.gpu")
STOP_GRACE_S = 120.0
"""How long stopping worker processes may take before they are killed."""


class CudaStartedInParent(RuntimeError):
    """CUDA was initialised in a process about to start GPU worker processes."""


def cuda_started() -> bool:
    """Whether this process initialised CUDA (torch is never imported to find out)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def supervise(
    plans: Sequence[GpuPlan],
    worker_args: Callable[[int, GpuPlan], list[str]],
    *,
    cuda_check: Callable[[], bool] = cuda_started,
    python: str = sys.executable,
) -> int:
    """Run one worker process per plan until they stop; returns the exit code.

    ``worker_args(i, plan)``: the ``segue worker`` arguments of the i-th process.

    Raises:
        CudaStartedInParent: This process initialised CUDA: no child is started.
    """
    if cuda_check():
        raise CudaStartedInParent(
            "CUDA was initialised in the process that starts the GPU worker processes; "
            "it must not start children after that. Start `segue worker --gpu` in a fresh "
            "process, and import no CUDA code before it"
        )
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i, plan in enumerate(plans):
            env = {**os.environ, **plan.env()}
            args = [python, "-m", "orchestrator.cli", "worker", *worker_args(i, plan)]
            children.append(subprocess.Popen(args, env=env))
            device = plan.device
            log.info(
                "GPU worker process %d serves %s",
                children[-1].pid,
                f"GPU {device.index} ({device.name})" if device else "the CPU",
            )
        return _wait(children, stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all(children, signal.SIGTERM)


def _wait(children: list[subprocess.Popen[bytes]], stopping: list[int]) -> int:
    while True:
        codes = [child.poll() for child in children]
        if all(code is not None for code in codes):
            return max((abs(code or 0) for code in codes), default=0) if not stopping else 0
        ended = [code for code in codes if code is not None]
        if ended and not stopping:
            code = ended[0] or 1
            log.error("a GPU worker process stopped (exit %s); stopping the others", ended[0])
            stopping.append(signal.SIGTERM)
            _stop_all(children, signal.SIGTERM)
            return code
        time.sleep(0.2)


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
