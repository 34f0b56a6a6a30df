"""The operations page over HTTP: token rules, pages, the resumable event stream."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from nodes.library import default_registry
from orchestrator.cli import app as cli
from orchestrator.planner import compile_workflow
from orchestrator.store.base import RunRecord
from orchestrator.ui import auth, create_app
from orchestrator.ui.graph import render_svg
from orchestrator.ui.views import iteration_rate
from tests.ui.jobs import TOKEN, Served, embedded, ticker


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    with embedded(tmp_path_factory.mktemp("ui-app")) as served:
        job = served.client.submit(ticker(stop=4, interval_s=0))
        job.wait(timeout=30)
        yield served, job.id


def page(served: Served, guard_reads: bool) -> TestClient:
    return TestClient(create_app(served.sources, TOKEN, guard_reads))


def test_a_control_action_needs_the_token_in_a_header(finished: tuple[Served, str]) -> None:
    served, job = finished
    client = page(served, guard_reads=False)
    url = f"/api/jobs/{job}/cancel"
    assert client.post(url).status_code == 401
    assert client.post(url, headers={"X-Segue-Token": "wrong"}).status_code == 401
    client.cookies.set(auth.COOKIE, TOKEN)
    assert client.post(url).status_code == 401, "a cookie alone never steers"
    assert client.post(url, headers={"X-Segue-Token": TOKEN}).status_code == 200
    assert client.post(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_reads_are_open_on_loopback_and_guarded_elsewhere(finished: tuple[Served, str]) -> None:
    served, job = finished
    assert page(served, guard_reads=False).get(f"/jobs/{job}").status_code == 200
    guarded = page(served, guard_reads=True)
    for path in ("/jobs", f"/jobs/{job}", f"/jobs/{job}/events", "/metrics"):
        assert guarded.get(path).status_code == 401, path
    assert guarded.get("/static/ui.css").status_code == 200
    assert guarded.get("/jobs", headers={"X-Segue-Token": TOKEN}).status_code == 200
    first = guarded.get(f"/jobs?token={TOKEN}")
    assert first.status_code == 200
    assert "HttpOnly" in first.headers["set-cookie"]
    assert guarded.get(f"/jobs/{job}").status_code == 200, "the cookie the token set reads on"


def test_the_job_page_shows_graph_loops_health_and_the_traceback(
    finished: tuple[Served, str],
) -> None:
    served, job = finished
    html = page(served, guard_reads=False).get(f"/jobs/{job}").text
    for node in ("ticks", "scaled", "nap", "picky", "out"):
        assert f'data-node="{node}"' in html
    assert 'class="band" data-loop="ticks"' in html
    assert re.search(r'data-loop="ticks" data-status="completed"', html)
    assert 'data-health="failing"' in html or 'data-health="healthy"' in html
    assert "Traceback (most recent call last)" in html
    assert "job" in page(served, guard_reads=False).get("/jobs").text


def test_metrics_are_served_from_the_same_computations(finished: tuple[Served, str]) -> None:
    served, _ = finished
    text = page(served, guard_reads=False).get("/metrics").text
    assert 'segue_loop_iterations_total{loop="ticks",workflow="ticker"} 4.0' in text


def sse_ids(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"^id: (\d+)$", text, re.M)]


def test_the_event_stream_resumes_after_last_event_id(finished: tuple[Served, str]) -> None:
    served, job = finished
    client = page(served, guard_reads=False)
    full = client.get(f"/jobs/{job}/events")
    assert full.headers["content-type"].startswith("text/event-stream")
    ids = sse_ids(full.text)
    assert len(ids) > 5 and ids == sorted(ids)
    assert full.text.rstrip().endswith("event: end\ndata: {}")
    middle = ids[len(ids) // 2]
    resumed = client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": str(middle)})
    assert sse_ids(resumed.text) == [i for i in ids if i > middle]
    assert client.get("/jobs/nope/events").status_code == 404


def test_unknown_jobs_and_loops_answer_404(finished: tuple[Served, str]) -> None:
    served, job = finished
    client = page(served, guard_reads=False)
    assert client.get("/jobs/nope").status_code == 404
    headers = {"X-Segue-Token": TOKEN}
    assert client.post(f"/api/jobs/{job}/loops/nope/pause", headers=headers).status_code == 404


def test_segue_ui_refuses_a_non_loopback_host_without_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SEGUE_UI_TOKEN", raising=False)
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "SEGUE_UI_TOKEN" in result.output
    assert "Traceback" not in result.output


def test_loopback_hosts_are_told_apart_from_others() -> None:
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1")
    assert auth.is_loopback("localhost")
    assert not auth.is_loopback("0.0.0.0") and not auth.is_loopback("example.org")


def test_the_graph_boxes_each_loop_and_draws_every_node_and_edge() -> None:
    plan = compile_workflow(ticker(), default_registry())
    svg = render_svg(plan, {"picky": {"health": "failing", "succeeded": 1, "failed": 1}})
    assert svg.count('class="band"') == 2
    assert svg.count('class="edge"') == 5
    assert 'data-node="picky" data-health="failing"' in svg
    assert 'data-node="ticks" data-health="idle"' in svg


def test_iterations_per_second_count_the_producer_runs_of_the_last_ten_seconds() -> None:
    now = time.time()

    def run(i: int, at: float) -> RunRecord:
        return RunRecord(f"j:ticks:{i}:ticks", "j", "ticks", i, "ticks", "Range", "succeeded",
                         finished_at=at)  # fmt: skip

    runs = [run(i, now - 20 + i) for i in range(20)]
    assert iteration_rate(runs, "ticks", "ticks", now) == pytest.approx(1.0)
    assert iteration_rate(runs, "ticks", None, now) == 0.0


def test_segue_run_ui_serves_the_page_while_the_job_runs_and_prints_its_address(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    flow = tmp_path / "flow.json"
    flow.write_text(ticker(stop=3, interval_s=0).to_json())
    env = {**os.environ, "SEGUE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(flow), "--ui", "--ui-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"operations page: http://127\.0\.0\.1:\d+/jobs/[0-9a-f]+\?token=", done.stderr
    )


def test_the_job_page_shows_the_logs_card_with_a_node_filter(
    finished: tuple[Served, str],
) -> None:
    served, job = finished
    client = page(served, guard_reads=False)
    html = client.get(f"/jobs/{job}").text
    assert 'id="logs"' in html and 'id="now"' in html
    assert "value 2 is listed in fail_on: this run fails" in html
    assert '<option value="picky">picky</option>' in html
    only_nap = client.get(f"/jobs/{job}/panels?node=nap").text
    only_nap = only_nap[only_nap.index('id="logs"') :]
    assert '<option value="nap" selected>nap</option>' in only_nap
    assert "listed in fail_on" not in only_nap
    assert "No run of nap has logged anything yet." in only_nap
    only_picky = client.get(f"/jobs/{job}/panels?node=picky").text
    assert 'class="lv-warning"' in only_picky and "Traceback (most recent call last)" in only_picky
    # The ended job runs nothing now.
    assert "Nothing: the job has ended." in html


def test_the_now_card_lists_a_run_going_on(tmp_path: Path) -> None:
    with embedded(tmp_path / "now") as served:
        job = served.client.submit(ticker(stop=1, interval_s=0, nap_s=30))
        deadline = time.monotonic() + 20
        while not [r for r in served.client.runs(job.id) if r.status == "running"]:
            assert time.monotonic() < deadline, "the nap never showed running"
            time.sleep(0.05)
        html = page(served, guard_reads=False).get(f"/jobs/{job.id}/panels").text
        served.client.cancel(job.id)
        job.wait(timeout=30)
    now = html[html.index('id="now"') : html.index("<h2>Loops</h2>")]
    assert f'data-run="{job.id}:ticks:0:nap"' in now
    assert '<span class="pill s-running">running</span>' in now
