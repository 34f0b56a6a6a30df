"""Raw Celery tasks for ``bench_celery.py``: the arithmetic of Segue's nodes, no Segue around it.

The app comes from Segue's own factory (``orchestrator.celery.make_celery``), so
JSON only, late acks, reject-on-worker-lost, prefetch and task events are
exactly Segue's. Two things differ, both because plain Celery needs them: a
Redis result backend (how a caller learns a chain's end, and how a chord
gathers its header's results) and the queue, ``raw``, so that Segue's worker
never takes these tasks.

The worker runs ``celery -A benchmarks.raw_celery_tasks worker ...``; Celery
asks this module for ``app``, built then from the ``SEGUE_*`` environment.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from orchestrator.celery import make_celery
from orchestrator.settings import Settings

RAW_QUEUE = "raw"
RESULT_EXPIRES_S = 3600


def create_app(settings: Settings) -> Celery:
    """Segue's Celery app for ``settings`` plus a Redis result backend and the raw tasks."""
    app = make_celery(settings, name="raw")
    app.conf.update(
        result_backend=settings.broker_url,
        task_ignore_result=False,
        result_expires=RESULT_EXPIRES_S,
        task_default_queue=RAW_QUEUE,
    )
    # The same options Segue's node tasks get (workers/app.py).
    options: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}
    app.task(name="raw.constant", **options)(constant)
    app.task(name="raw.add", **options)(add)
    app.task(name="raw.mul", **options)(mul)
    app.task(name="raw.total", **options)(total)
    return app


def constant(value: int) -> int:
    """What ``Constant`` does."""
    return value


def add(a: int, b: int) -> int:
    """What ``Math(op=add)`` does."""
    return a + b


def mul(a: int, b: int) -> int:
    """What ``Math(op=mul)`` does."""
    return a * b


def total(values: list[int]) -> int:
    """A chord's body: the sum of its header's results."""
    return sum(values)


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # Built on first use, from the environment the benchmark gives the worker:
    # importing this module creates nothing.
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app(Settings())
    return _app
