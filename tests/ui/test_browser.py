"""The operations page in a real browser: Debian's chromium, driven by Playwright.

One embedded job with a slow loop is served; the tests watch it on the page,
steer it with the buttons and check the store agrees. A screenshot of the job
page is saved to ``build/ui-screenshot.png`` for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.jobs import TOKEN, Served, embedded, ticker

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "ui-screenshot.png"

pytestmark = pytest.mark.browser


def _needs(what: str) -> None:
    message = f"{what}; run scripts/ensure-chromium.sh and install the dev extra"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _needs(f"Debian's chromium is missing at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _needs("Playwright for Python is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    with embedded(tmp_path_factory.mktemp("ui-browser"), serve=True) as served:
        job = served.client.submit(ticker(nap_s=1.2))  # each nap shows in the Now card
        yield served, job.id
        served.client.cancel(job.id)
        job.wait(timeout=30)


@pytest.fixture(scope="module")
def page(browser: Any, running: tuple[Served, str]) -> Iterator[Any]:
    served, job = running
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{served.url}/jobs/{job}?token={TOKEN}")
    yield page
    context.close()


def loop_status(served: Served, job: str, name: str) -> str:
    return {info.name: info.status for info in served.client.loops(job)}[name]


def test_the_page_draws_the_graph_with_every_node(page: Any) -> None:
    page.wait_for_selector("svg.graph")
    for node in ("ticks", "gain", "scaled", "nap", "picky", "out"):
        assert page.locator(f'svg.graph [data-node="{node}"]').count() == 1
    assert page.locator('svg.graph .band[data-loop="ticks"]').count() == 1
    assert "?token=" not in page.url, "the token leaves the address bar for the tab's storage"


def test_a_loops_iteration_count_rises_live(page: Any) -> None:
    cell = 'tr[data-loop="ticks"] .iterations'
    page.wait_for_selector(cell)
    first = int(page.locator(cell).inner_text())
    page.wait_for_function(
        f"n => Number(document.querySelector('{cell}').textContent) > n + 2", arg=first
    )
    page.wait_for_selector("#log li")


def test_pause_and_resume_from_the_page_reach_the_store(
    page: Any, running: tuple[Served, str]
) -> None:
    served, job = running
    page.click('tr[data-loop="ticks"] button:has-text("Pause")')
    page.wait_for_selector('tr[data-loop="ticks"][data-status="paused"]', timeout=10_000)
    assert loop_status(served, job, "ticks") == "paused"
    page.click('tr[data-loop="ticks"] button:has-text("Resume")')
    page.wait_for_selector('tr[data-loop="ticks"][data-status="running"]', timeout=10_000)
    assert loop_status(served, job, "ticks") == "running"


def test_the_now_card_shows_the_nap_going_on(page: Any, running: tuple[Served, str]) -> None:
    _, job = running
    page.wait_for_selector(f'#now tr[data-run^="{job}:ticks:"] .pill.s-running', timeout=15_000)
    assert "nap" in page.locator("#now tbody").inner_text()


def test_the_logs_card_shows_a_runs_log_and_filters_by_node(page: Any) -> None:
    page.wait_for_selector("#logs li.lv-warning", timeout=15_000)
    assert "value 2 is listed in fail_on" in page.locator("#logs .runlog").inner_text()
    page.select_option("select[data-logs-node]", "nap")
    page.wait_for_selector("#logs p.empty", timeout=10_000)
    page.wait_for_timeout(1800)  # a refresh keeps the node picked
    assert page.locator("select[data-logs-node]").input_value() == "nap"
    page.select_option("select[data-logs-node]", "")
    page.wait_for_selector("#logs li.lv-warning", timeout=10_000)


def test_a_failed_nodes_traceback_shows(page: Any, tmp_path: Path) -> None:
    summary = 'tr[data-node="picky"] details.trace summary'
    page.wait_for_selector(summary, timeout=10_000)
    page.click(summary)
    trace = page.locator('tr[data-node="picky"] pre.traceback')
    trace.wait_for()
    assert "Traceback (most recent call last)" in trace.inner_text()
    page.wait_for_timeout(1800)  # one refresh: an open traceback stays open
    assert trace.is_visible()
    shot = tmp_path / "ui-screenshot.png"
    for _ in range(20):  # a shot with a nap going on, between two refreshes
        page.wait_for_selector("#now tr[data-run]", timeout=10_000)
        page.screenshot(path=str(shot), full_page=True)
        if page.locator("#now tr[data-run]").count():
            break
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)


def test_a_control_post_without_the_token_is_refused(
    page: Any, running: tuple[Served, str]
) -> None:
    served, job = running
    response = page.request.post(f"{served.url}/api/jobs/{job}/loops/ticks/pause")
    assert response.status == 401
    assert loop_status(served, job, "ticks") == "running"
