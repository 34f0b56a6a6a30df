"""Segue's Celery side: the app factory, the node task, the GPU runtime, worker bootstrap.

Built on :mod:`orchestrator`; nothing here is imported by it.
"""

__all__: list[str] = []
