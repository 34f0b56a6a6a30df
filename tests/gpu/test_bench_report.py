"""The benchmarks' shared table printing (``benchmarks/report.py``), as
``bench_gpu.py`` and ``bench_celery.py`` print their figures with it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_celery
import bench_gpu
from report import Column, services_missing, table, verdict

FIGURES = {
    "device": "cpu (no GPU found: CPU build of torch)",
    "device_total_mb": None,
    "busy": {
        "size": 256,
        "runs": 40,
        "run_ms_median": 1.5,
        "busy_fraction": 0.42,
        "idle_gap_ms_median": 2.25,
        "idle_gap_ms_p99": 9.0,
    },
    "packing": {
        "size": 64,
        "vram_mb_each": 512,
        "one_at_a_time_runs_per_s": 100.0,
        "packed_runs_per_s": 350.0,
        "speedup": 3.5,
    },
}


def test_a_table_aligns_each_column_to_its_widest_cell() -> None:
    columns = [Column("case", "case", align="<"), Column("runs/s", "rate", ",.1f")]
    text = table(
        columns, [{"case": "fan", "rate": 12345.67}, {"case": "a-long-case", "rate": None}]
    )
    assert text.splitlines() == [
        "case           runs/s",
        "fan          12,345.7",
        "a-long-case         -",
    ]


def test_verdicts_and_the_services_message() -> None:
    assert [verdict(True), verdict(False), verdict(None)] == ["PASS", "MISS", "-"]
    assert services_missing("bench_x", OSError("refused")).startswith(
        "bench_x needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379:"
    )


def test_bench_gpu_prints_each_figure_against_its_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_gpu.print_table(FIGURES)
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert "busy busy fraction 42.0 % >= 90 % (100 ms runs) MISS" in lines
    assert "busy idle gap median 2.25 ms <= 5 ms PASS" in lines
    assert "busy idle gap p99 9.00 ms - -" in lines  # no target, no verdict
    assert "packing speedup 3.50 x >= 3x PASS" in lines
    assert lines[1] == "(CPU-only machine: the GPU worker serves the gpu queue on the CPU build)"


def test_bench_celery_prints_its_rows_with_the_same_helper(
    capsys: pytest.CaptureFixture[str],
) -> None:
    row = {
        "case": "fan-out 1000",
        "unit": "runs/s",
        "segue": 2100,
        "celery": 1500,
        "ratio": 1.4,
        "target": ">= 0.5x",
        "pass": True,
        "segue_worker_runs": 1000,
        "celery_tasks": 1002,
        "same_result": True,
    }
    bench_celery.print_table([row], 3)
    header, line = capsys.readouterr().out.splitlines()[1:]
    assert header.split()[:4] == ["case", "unit", "segue", "celery"]
    assert (
        " ".join(line.split())
        == "fan-out 1000 runs/s 2,100 1,500 1.40x >= 0.5x PASS 1,000 / 1,002 True"
    )
