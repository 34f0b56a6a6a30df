"""The conformance suite runs every test over each executor kind: the
:func:`~tests.support.harness.executor` fixture, shared with ``tests/examples``."""

from tests.support.harness import executor

__all__ = ["executor"]
