"""A cluster on a Redis that needs a password, an ACL user, or TLS runs jobs end to end:
coordinator, worker, client and CLI all take the broker URL as given
(``redis://:password@…``, ``redis://user:password@…``, ``rediss://…``).

Each test starts a ``redis-server`` of its own on a free port; the TLS one uses a
self-signed certificate made here with ``openssl``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from orchestrator import Workflow
from tests.support.cluster import Cluster
from tests.support.services import postgres_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
SEGUE = [sys.executable, "-m", "orchestrator.cli"]
ACL = ["--user", "segue", "on", ">segue-pw", "~*", "&*", "+@all", "--user", "default", "off"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = folder / "redis.crt", folder / "redis.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def start_redis(folder: Path, args: list[str], url: str) -> subprocess.Popen[bytes]:
    """A ``redis-server`` with ``args``, once ``url`` answers a ping."""
    server = subprocess.Popen(
        ["redis-server", "--save", "", "--appendonly", "no", "--dir", str(folder), *args],
        stdout=(folder / "redis.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if redis.Redis.from_url(url, socket_timeout=2).ping():
                return server
        except redis.RedisError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError((folder / "redis.log").read_text())
        time.sleep(0.1)


@contextmanager
def secured_redis(kind: str, folder: Path) -> Iterator[str]:
    """A ``redis-server`` that refuses anything less than ``kind``'s credentials (and TLS);
    yields the broker URL that satisfies it."""
    port = free_port()
    if kind == "password":
        args, url = (
            ["--port", str(port), "--requirepass", "s3cret"],
            f"redis://:s3cret@127.0.0.1:{port}/0",
        )
    elif kind == "acl-user":
        args, url = ["--port", str(port), *ACL], f"redis://segue:segue-pw@127.0.0.1:{port}/0"
    else:
        cert, key = certificate(folder)
        args = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert)]
        args += ["--tls-key-file", str(key), "--tls-ca-cert-file", str(cert)]
        args += ["--tls-auth-clients", "no", *ACL]
        url = (
            f"rediss://segue:segue-pw@127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
        )
    server = start_redis(folder, args, url)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module", params=["password", "acl-user", "tls"])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A broker URL for a Redis with a password, an ACL user, or TLS and an ACL user."""
    with secured_redis(request.param, tmp_path_factory.mktemp(f"redis-{request.param}")) as url:
        yield url


@pytest.fixture(scope="module")
def tls_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Redis that speaks only TLS, to an ACL user."""
    with secured_redis("tls", tmp_path_factory.mktemp("redis-tls-only")) as url:
        yield url


@pytest.fixture(scope="module")
def cluster_on(secured: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and a thread worker on the secured Redis."""
    with postgres_database() as database:
        cluster = Cluster(tmp_path_factory.mktemp("cluster"), secured, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()


def test_a_job_runs_end_to_end_through_the_secured_redis(cluster_on: Cluster) -> None:
    with cluster_on.client() as client:
        result = client.submit(Workflow.load(QUICKSTART), {"n": 4}).wait(timeout=60)
    assert result.status == "completed", result.error
    assert result.outputs == {"total": 24, "message": "n squared plus 2n is 24"}


def test_the_cli_submits_and_waits_through_the_secured_redis(cluster_on: Cluster) -> None:
    done = subprocess.run(
        [*SEGUE, "submit", str(QUICKSTART), "-i", "n=2", "--wait", "--json"],
        capture_output=True,
        text=True,
        env=cluster_on.env,
        cwd=cluster_on.root,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"total": 8, "message": "n squared plus 2n is 8"}


def test_a_wrong_password_is_refused_without_a_traceback(tls_only: str, tmp_path: Path) -> None:
    # The client retries a refused connection for ~10 s first (the broker retry policy).
    env = {**os.environ, "SEGUE_HOME": str(tmp_path)}  # the store: SQLite in there
    for name in ("SEGUE_DEBUG", "SEGUE_DATABASE_URL", "SEGUE_BROKER_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [*SEGUE, "submit", str(QUICKSTART), "--broker-url", tls_only.replace("segue-pw", "nope")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=90,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "cannot reach the broker at rediss://segue:***@127.0.0.1" in done.stderr, done.stderr
    assert "nope" not in done.stderr


def test_a_worker_on_the_secured_redis_dead_letters_raw_bytes(cluster_on: Cluster) -> None:
    raw = redis.Redis.from_url(cluster_on.broker_url)
    raw.lpush("thread", b"raw bytes on a secured broker")
    deadline = time.monotonic() + 30
    while raw.llen("segue.dead") < 1:
        assert time.monotonic() < deadline, cluster_on.log("thread")
        time.sleep(0.1)
    assert cluster_on.processes["thread"].poll() is None


def test_the_tls_broker_refuses_a_plain_connection(tls_only: str) -> None:
    plain = tls_only.replace("rediss://", "redis://").partition("?")[0]
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(plain, socket_timeout=2).ping()
