"""Where the page reads and steers: a cluster's store and broker, or an embedded job's store."""

from __future__ import annotations

from collections.abc import Callable

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.client import Client
from orchestrator.metrics import prometheus_registry, segue_collector
from orchestrator.settings import Settings
from orchestrator.store import Store, open_store
from orchestrator.ui.app import Sources
from orchestrator.ui.views import Reads


def page_sources(
    client: Client,
    store: Store,
    settings: Settings,
    registry: NodeRegistry | None = None,
    *,
    broker: bool = True,
) -> tuple[Sources, Callable[[], None]]:
    """The page's sources over ``store``, steering through ``client``, and what
    releases the queue-depth readers (``broker``: read depths from
    ``settings.broker_url``; an embedded job has no broker)."""
    types = registry or default_registry()
    collector, depths = segue_collector(store, settings, types, broker=broker)
    sources = Sources(client, Reads(store, types, collector), prometheus_registry(collector))
    return sources, (depths.close if depths is not None else _nothing)


def cluster_sources(settings: Settings) -> tuple[Sources, Callable[[], None]]:
    """The page of a cluster: its store and broker, as the CLI opens them.

    Raises:
        StoreError: The store cannot be opened.
    """
    from orchestrator.client.cluster import ClusterBackend  # the broker, only when used

    backend = ClusterBackend(settings)
    client = Client(backend)
    sources, release = page_sources(client, backend.store, settings)

    def close() -> None:
        release()
        client.close()

    return sources, close


def embedded_sources(
    client: Client, settings: Settings, registry: NodeRegistry | None = None
) -> tuple[Sources, Callable[[], None]]:
    """The page of an embedded engine: ``client`` steers, the same store is read.

    Raises:
        StoreError: The store cannot be opened.
    """
    store = open_store(settings.database_url, settings.home)
    sources, release = page_sources(client, store, settings, registry, broker=False)

    def close() -> None:
        release()
        store.close()

    return sources, close


def _nothing() -> None:
    pass
