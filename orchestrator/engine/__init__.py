"""The embedded engine: the driver over local pools, in this process.

``Client.embedded()`` builds one; use it directly only to embed Segue in a
service of your own.
"""

from orchestrator.engine.engine import Engine
from orchestrator.engine.executor import LocalExecutor

__all__ = ["Engine", "LocalExecutor"]
