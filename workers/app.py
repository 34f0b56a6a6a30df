"""The Celery app factory: Segue's configuration plus one task per node type."""

from __future__ import annotations

import json
from typing import Any

from celery import Celery
from celery.signals import task_postrun, worker_process_init

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.broker import REDIS_SCHEMES, scheme
from orchestrator.celery import make_celery, task_name
from orchestrator.messages import RunRequest
from orchestrator.settings import Settings
from workers import lost
from workers import runtime as runtimes
from workers.deadletter import DeadLetterConsumer, DeadLetterTransport, dead_letter, publish_with
from workers.liveness import Liveness, announce_child
from workers.lost import NodeRequest
from workers.task import execute, parse_request


def create_app(
    settings: Settings | None = None, registry: NodeRegistry | None = None, *, gpu: bool = False
) -> Celery:
    """A Celery app with a named task for every registered node type.

    Each node type is its own task (``segue.node.<Type>``), so Flower shows
    work, rates and failures per node type. The tasks take one argument: a
    JSON ``RunRequest``. ``gpu``: the app of a GPU worker, which frees cached
    CUDA memory after each task (other workers skip the per-task signal).

    What the worker cannot run goes to the dead-letter queue, and it serves on
    (:mod:`workers.deadletter`).
    """
    settings = settings or Settings()
    registry = registry or default_registry()
    runtimes.configure(settings, registry)
    lost.configure(settings)
    app = make_celery(settings)
    app.conf.worker_consumer = DeadLetterConsumer
    if scheme(settings.broker_url) in REDIS_SCHEMES:
        app.conf.broker_transport = DeadLetterTransport
    for node_type in registry:
        _register(app, task_name(node_type.type_name))
    app.steps["worker"].add(Liveness)
    worker_process_init.connect(_fresh_process, weak=False)
    if gpu:
        task_postrun.connect(_free_gpu_memory, weak=False)
    return app


def _register(app: Celery, name: str) -> None:
    def run_node(self: Any, *args: Any, **kwargs: Any) -> str:
        request = parse_request(args, kwargs)
        if isinstance(request, str):  # not a RunRequest: nothing is claimed or run
            info = self.request.delivery_info or {}
            body = {"args": list(args), "kwargs": kwargs}
            record = dead_letter(
                request, info.get("routing_key"), json.dumps(body, default=repr), task=self.name
            )
            publish_with(self.app, record)
            return f"dead-lettered: {request}"
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))

        def forward(run: RunRequest, queue: str) -> None:
            body = run.model_dump(mode="json", exclude_defaults=True)
            self.app.send_task(self.name, args=[body], task_id=run.run_id, queue=queue)

        return execute(runtimes.runtime(self.request.hostname), request, redelivered, forward)

    app.task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True, Request=NodeRequest)(
        run_node
    )


def _fresh_process(**_: Any) -> None:
    # A prefork child must not reuse its parent's connections, nor its name.
    runtimes.reset()
    announce_child()


def _free_gpu_memory(**_: Any) -> None:
    # GPU workers free cached CUDA memory between tasks; torch is never
    # imported here unless a node already imported it.
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
