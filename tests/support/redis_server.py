"""A Redis server of a test's own, on a free loopback port, that the test may stop.

The machine's Redis is shared and never restarted; a test that takes its broker
away starts one of these instead (AOF on, as DESIGN section 10 asks of a broker),
in a folder of its own, and stops or kills it as the outage it plays needs.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

START_S = 10.0
"""How long a server may take to answer after it was started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process with AOF, restartable on the same port and data.

    Args:
        folder: Where its data (the AOF) and log live.
    """

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed; a broker outage needs one of its own")
        self.binary = binary
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL of this server (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again) and wait until it answers."""
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_S
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.log()}")
            time.sleep(0.02)
        client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server: SIGTERM (it writes its AOF and exits) or SIGKILL (a crash)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self.process = None

    def restart(self, down_s: float, sig: int = signal.SIGTERM) -> None:
        """Stop the server, leave it down ``down_s`` seconds, start it again."""
        self.stop(sig)
        time.sleep(down_s)
        self.start()

    def log(self) -> str:
        """The last lines the server wrote."""
        path = self.folder / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
