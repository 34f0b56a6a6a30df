"""`segue run`'s live progress shows a stream's chunks as they come (DESIGN 3.14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from orchestrator import Client, Workflow
from orchestrator.cli.progress import ProgressView

pytestmark = pytest.mark.timeout(60)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "token-stream.yaml"


def test_the_progress_view_shows_each_stream_with_its_latest_chunks(tmp_path: Path) -> None:
    view = ProgressView("token-stream")
    with Client.embedded(tmp_path) as client:
        job = client.submit(Workflow.load(EXAMPLE), {"prompt": "tokens come one by one"})
        for event in job.events(timeout=30):
            view.apply(event)

    console = Console(width=200, record=True)
    console.print(view.render())
    shown = console.export_text()

    assert "tokens.token [5] tokens come one by one" in shown
    assert "relay.items [5] tokens come one by one" in shown
