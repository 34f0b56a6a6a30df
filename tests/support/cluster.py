"""A real cluster for tests: a coordinator and workers as separate processes.

Workers: one thread-pool worker (queues thread, asyncio, highmem), one
process-pool worker and one GPU worker (solo slot; TorchMatmul runs on the
CPU build of torch here). All share a PostgreSQL database, a Redis broker
database and an artifacts folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import Client
from orchestrator.heartbeat import age
from orchestrator.settings import Settings

STARTUP_S = 60.0

WORKERS: dict[str, list[str]] = {
    "thread": ["--pool", "thread", "--queues", "thread,asyncio,highmem", "--concurrency", "8"],
    "process": ["--pool", "process", "--queues", "process", "--concurrency", "2"],
    "gpu": ["--gpu"],
}


@dataclass
class Cluster:
    """Processes and settings of one test cluster."""

    root: Path
    broker_url: str
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment every process of the cluster runs with."""
        return {
            **os.environ,
            "SEGUE_HOME": str(self.root / "home"),
            "SEGUE_BROKER_URL": self.broker_url,
            "SEGUE_DATABASE_URL": self.database_url,
            "SEGUE_ARTIFACTS_URL": str(self.root / "artifacts"),
            # Test clusters share a host: no coordinator takes the default metrics port.
            "SEGUE_METRICS_PORT": "0",
            **self.extra_env,
        }

    def settings(self) -> Settings:
        """Settings a client of this cluster uses."""
        return Settings(
            home=self.root / "home",
            broker_url=self.broker_url,
            database_url=self.database_url,
            artifacts_url=str(self.root / "artifacts"),
        )

    def client(self) -> Client:
        """A client of this cluster."""
        return Client(settings=self.settings())

    # processes ---------------------------------------------------------------------
    def start(self, name: str, *extra: str) -> None:
        """Start a coordinator (``coordinator``, ``coordinator-…``) or a worker (a key of
        WORKERS, or ``key-…`` for another of its kind), with ``extra`` arguments."""
        kind = name.partition("-")[0]
        args = ["coordinator"] if kind == "coordinator" else ["worker", *WORKERS[kind]]
        args += extra
        env = {**self.env, "SEGUE_HEARTBEAT_PATH": str(self.heartbeat(name))}
        self.heartbeat(name).unlink(missing_ok=True)
        log = (self.root / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args],
            env=env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def heartbeat(self, name: str) -> Path:
        """The heartbeat file of one process."""
        return self.root / f"{name}.heartbeat"

    def wait_ready(self, *names: str) -> None:
        """Wait until the named processes wrote a fresh heartbeat."""
        deadline = time.monotonic() + STARTUP_S
        for name in names:
            while True:
                beat_age = age(self.heartbeat(name))
                if beat_age is not None and beat_age < 5:
                    break
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}: {self.log(name)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not start: {self.log(name)}")
                time.sleep(0.1)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a process and its children (a prefork worker's pool)."""
        process = self.processes[name]
        try:
            for child in _children(process.pid):
                os.kill(child, sig)
            process.send_signal(sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def log(self, name: str) -> str:
        """The last lines a process wrote."""
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """Warm-stop every process, then kill what is left."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(name)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]
