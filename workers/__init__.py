"""What runs in a worker process: the worker's Celery app, the node task, the GPU
runtime, worker bootstrap.

Built on :mod:`orchestrator`; nothing here is imported by it.
"""

__all__: list[str] = []
