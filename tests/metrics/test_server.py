"""``/metrics`` over HTTP for the coordinator: served, closed, and never fatal."""

from __future__ import annotations

import logging
import socket
import urllib.request
from pathlib import Path

import pytest

from orchestrator.metrics import serve_metrics
from orchestrator.settings import Settings
from orchestrator.store import JobRecord, MemoryStore


def settings(tmp_path: Path, port: int) -> Settings:
    # A memory broker: no queue depths, the rest from the store.
    return Settings(
        home=tmp_path,
        broker_url="memory://metrics-server",
        metrics_port=port,
        metrics_host="127.0.0.1",
    )


def test_metrics_are_served_until_closed(tmp_path: Path) -> None:
    store = MemoryStore()
    store.create_job(JobRecord(id="j1", workflow="wf", status="running"))
    server = serve_metrics(store, settings(tmp_path, 0), port=_free_port())
    assert server is not None
    url = f"http://127.0.0.1:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    server.close()

    assert 'segue_jobs{state="running"} 1.0' in text
    assert 'segue_metrics_source_up{source="store"} 1.0' in text
    assert "process_resident_memory_bytes" in text
    with socket.socket() as again:  # nothing listens on the port any more
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", server.port))
        again.listen()


def test_port_zero_serves_nothing(tmp_path: Path) -> None:
    assert serve_metrics(MemoryStore(), settings(tmp_path, 0)) is None


def test_a_taken_port_is_logged_and_the_coordinator_goes_on_without_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, "segue.metrics"):
            assert serve_metrics(MemoryStore(), settings(tmp_path, port)) is None

    assert f"cannot serve /metrics on 127.0.0.1:{port}" in caplog.text
    assert "--metrics-port" in caplog.text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
