"""The operations page (DESIGN section 6): ``segue ui`` and ``segue run --ui``.

A Starlette app (:func:`create_app`) over the store, steering through the
client; served by uvicorn (:class:`UiServer` on a thread, :func:`serve` in
the foreground). Token rules are in :mod:`orchestrator.ui.auth`.
"""

from orchestrator.ui.app import Sources, create_app
from orchestrator.ui.auth import is_loopback, new_token
from orchestrator.ui.server import UiServer, address, bind, serve
from orchestrator.ui.sources import cluster_sources, embedded_sources, page_sources
from orchestrator.ui.views import Reads

__all__ = [
    "Reads",
    "Sources",
    "UiServer",
    "address",
    "bind",
    "cluster_sources",
    "create_app",
    "embedded_sources",
    "is_loopback",
    "new_token",
    "page_sources",
    "serve",
]
