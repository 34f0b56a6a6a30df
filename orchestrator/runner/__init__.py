"""Running one node run, the same way in every executor."""

from orchestrator.runner.runner import NodeRunner
from orchestrator.runner.spec import Cache, RunSpec
from orchestrator.runner.values import (
    ARTIFACT_KEY,
    DEFAULT_THRESHOLD,
    cache_key,
    offload,
    restore,
    restore_value,
)

__all__ = [
    "ARTIFACT_KEY",
    "DEFAULT_THRESHOLD",
    "Cache",
    "NodeRunner",
    "RunSpec",
    "cache_key",
    "offload",
    "restore",
    "restore_value",
]
