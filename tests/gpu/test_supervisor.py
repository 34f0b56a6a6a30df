"""The GPU supervisor never starts CUDA itself and refuses to start children after
anything in its process did (a CUDA context must not cross into a child); it
starts a crashed worker process again on its device after a backoff, gives up
on a device that keeps crashing, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workers.bootstrap import WorkerOptions
from workers.gpu.devices import GpuDevice
from workers.gpu.launch import child_args
from workers.gpu.restarts import RestartPolicy
from workers.gpu.serving import GpuPlan
from workers.gpu.supervisor import CudaStartedInParent, supervise

A = GpuDevice(0, "Fake GPU A", 4096, 4000)


def test_a_parent_that_started_cuda_refuses_to_start_gpu_worker_processes() -> None:
    started: list[int] = []

    def args(i: int, plan: GpuPlan) -> list[str]:
        started.append(i)
        return ["--gpu"]

    with pytest.raises(CudaStartedInParent, match="must not start children after that"):
        supervise([GpuPlan(A)], args, cuda_check=lambda: True)
    assert started == []


def test_finding_gpus_and_starting_the_supervisor_never_imports_torch_here() -> None:
    # Without NVML the probe asks torch in a child process: this one stays clean.
    code = (
        "import sys, orchestrator.cli, workers.gpu.launch\n"
        "from workers.gpu.devices import default_probe\n"
        "from workers.gpu.supervisor import cuda_started\n"
        "default_probe().devices()\n"
        "print('torch' in sys.modules, cuda_started())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_each_worker_process_gets_its_options_and_a_metrics_port_of_its_own() -> None:
    options = WorkerOptions(gpu=True, queues=("gpu", "big"), gpu_share=True, metrics_port=9300)
    plan = GpuPlan(A, share=True, reserve_mb=512)
    assert child_args(options, 2, plan) == [
        "--gpu",
        "--gpu-reserve-mb",
        "512",
        "--queues",
        "gpu,big",
        "--gpu-share",
        "--metrics-port",
        "9302",
    ]


def test_the_wait_before_a_restart_doubles_with_recent_crashes_up_to_a_cap() -> None:
    policy = RestartPolicy(backoff_s=1.0, max_backoff_s=5.0, max_crashes=10, window_s=60.0)
    assert [policy.delay([0.0] * n, 0.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    # A crash long ago counts no more: the wait starts over.
    assert policy.delay([0.0, 0.0, 100.0], 100.0) == 1.0


def test_a_device_is_given_up_after_max_crashes_within_the_window_only() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=60.0)
    assert not policy.gives_up([0.0, 10.0], 20.0)
    assert policy.gives_up([0.0, 10.0, 20.0], 20.0)
    assert not policy.gives_up([0.0, 10.0, 100.0], 100.0)  # the first two are too old


# A stand-in for `segue worker`: it records each start and the device it was
# given, then crashes (exit 3) for its first `crashes` starts (-1: always) and
# serves (sleeps) after that.
CHILD = """
import os, pathlib, sys, time
root, crashes = pathlib.Path(sys.argv[1]), int(sys.argv[2])
starts = root / ("starts-" + os.environ["CUDA_VISIBLE_DEVICES"])
with starts.open("a") as out:
    out.write(f"{os.getpid()}\\n")
if crashes < 0 or len(starts.read_text().split()) <= crashes:
    sys.exit(3)
time.sleep(600)
"""

# The supervisor in a process of its own (it installs signal handlers), over
# the stand-in, with short backoffs: devices given as [[index, crashes], ...].
SUPERVISOR = """
import json, logging, sys
from workers.gpu.devices import GpuDevice
from workers.gpu.restarts import RestartPolicy
from workers.gpu.serving import GpuPlan
from workers.gpu.supervisor import supervise
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
root, child, devices = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
plans = [GpuPlan(GpuDevice(i, f"Fake GPU {i}", 4096, 4000)) for i, _ in devices]
policy = RestartPolicy(backoff_s=0.1, max_backoff_s=0.4, max_crashes=3, window_s=60.0)
sys.exit(supervise(
    plans,
    lambda i, plan: [root, str(devices[i][1])],
    program=[sys.executable, child],
    restarts=policy,
    cuda_check=lambda: False,
))
"""


class Supervised:
    """The supervisor process, its log, and the starts of its worker processes."""

    def __init__(self, root: Path, devices: list[list[int]]) -> None:
        self.root = root
        child = root / "child.py"
        child.write_text(CHILD)
        self.log_path = root / "supervisor.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SUPERVISOR, str(root), str(child), json.dumps(devices)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def starts(self, index: int) -> list[int]:
        path = self.root / f"starts-{index}"
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout}s; log:\n{self.log()}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_crashed_worker_process_is_started_again_on_its_device_after_a_backoff(
    tmp_path: Path,
) -> None:
    supervised = Supervised(tmp_path, [[1, 2]])  # GPU 1: crashes twice, then serves
    try:
        supervised.wait_for(lambda: len(supervised.starts(1)) == 3, "third start")
        first, second, third = supervised.starts(1)
        assert len({first, second, third}) == 3  # fresh processes, same CUDA_VISIBLE_DEVICES
        supervised.wait_for(lambda: alive(third), "third process running")
        log = supervised.log()
        assert f"the worker process {first} serving GPU 1 (Fake GPU 1) stopped by itself " in log
        assert "(exit code 3); starting it again in 0.1 s (crash 1 of 3 allowed" in log
        assert "starting it again in 0.2 s (crash 2 of 3 allowed" in log  # the backoff grows
        supervised.process.send_signal(signal.SIGTERM)
        assert supervised.process.wait(30) == 0
        assert not alive(third)
    finally:
        supervised.close()


def test_a_device_that_keeps_crashing_is_given_up_and_the_others_serve_on(
    tmp_path: Path,
) -> None:
    supervised = Supervised(tmp_path, [[0, -1], [1, 0]])  # GPU 0 always crashes
    try:
        supervised.wait_for(lambda: "giving up on GPU 0" in supervised.log(), "giving up")
        assert (
            "giving up on GPU 0 (Fake GPU 0): its worker process crashed 3 times within 60 s"
            in supervised.log()
        )
        time.sleep(0.5)  # no further start of a given-up device
        assert len(supervised.starts(0)) == 3
        (serving,) = supervised.starts(1)
        assert supervised.process.poll() is None and alive(serving)
        supervised.process.send_signal(signal.SIGTERM)
        assert supervised.process.wait(30) == 0
        assert not alive(serving)
    finally:
        supervised.close()


def test_the_supervisor_exits_with_the_crash_code_once_every_device_is_given_up(
    tmp_path: Path,
) -> None:
    supervised = Supervised(tmp_path, [[0, -1]])
    try:
        assert supervised.process.wait(30) == 3
        assert "every GPU worker process was given up" in supervised.log()
        assert len(supervised.starts(0)) == 3
    finally:
        supervised.close()
