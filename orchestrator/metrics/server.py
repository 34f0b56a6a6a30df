"""``/metrics`` over HTTP, on a thread of its own, for the coordinator."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.registry import Collector

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.depths import BrokerDepths
from orchestrator.metrics.collector import MAX_AGE_S, SegueCollector
from orchestrator.settings import Settings
from orchestrator.store.base import Store

log = logging.getLogger("segue.metrics")


class MetricsServer:
    """Serves a Prometheus registry at ``http://host:port/metrics`` until :meth:`close`.

    Args:
        registry: What a scrape reads.
        port: The TCP port (0: any free one; :attr:`port` says which).
        host: The address to listen on.
        on_close: Called by :meth:`close` (release what the collectors hold).

    Raises:
        OSError: The port cannot be bound (in use, or privileged).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        port: int,
        host: str = "0.0.0.0",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self._on_close = on_close
        self.port: int = server.server_port

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._on_close is not None:
            self._on_close()


def segue_collector(
    store: Store,
    settings: Settings,
    registry: NodeRegistry | None = None,
    max_age_s: float = MAX_AGE_S,
    broker: bool = True,
) -> tuple[SegueCollector, BrokerDepths | None]:
    """The collector of the Segue series over ``store`` and (with ``broker``)
    ``settings.broker_url``, and the queue-depth readers it holds (``None``: no
    queue depths, when ``broker`` is false or the URL is not Redis or RabbitMQ)."""
    depths: BrokerDepths | None = None
    if broker:
        try:
            depths = BrokerDepths.open(settings.broker_url, settings.visibility_timeout_s)
        except ValueError as exc:
            log.warning("metrics leave segue_queue_depth empty: %s", exc)
    collector = SegueCollector(
        store,
        registry or default_registry(),
        depths,
        worker_timeout_s=settings.worker_timeout_s,
        max_age_s=max_age_s,
    )
    return collector, depths


def prometheus_registry(collector: Collector) -> CollectorRegistry:
    """A registry with ``collector`` and the process's own ``process_*`` series."""
    out = CollectorRegistry(auto_describe=True)
    out.register(collector)
    ProcessCollector(registry=out)
    return out


def coordinator_registry(
    store: Store,
    settings: Settings,
    registry: NodeRegistry | None = None,
    max_age_s: float = MAX_AGE_S,
) -> tuple[CollectorRegistry, BrokerDepths | None]:
    """A registry with the Segue series over ``store`` and ``settings.broker_url``
    (no queue depths when that is not a Redis or RabbitMQ URL), and the
    process's own ``process_*`` series."""
    collector, depths = segue_collector(store, settings, registry, max_age_s)
    return prometheus_registry(collector), depths


def serve_metrics(
    store: Store,
    settings: Settings,
    registry: NodeRegistry | None = None,
    port: int | None = None,
) -> MetricsServer | None:
    """Serve the coordinator's ``/metrics`` on ``port`` (default
    ``settings.metrics_port``; 0: not at all).

    A port that cannot be bound is logged, not raised: the coordinator drives
    its jobs without metrics rather than not at all.
    """
    port = settings.metrics_port if port is None else port
    if not port:
        return None
    metrics, depths = coordinator_registry(store, settings, registry)
    try:
        on_close = depths.close if depths is not None else None
        server = MetricsServer(metrics, port, settings.metrics_host, on_close=on_close)
    except OSError as exc:
        log.error(
            "cannot serve /metrics on %s:%d (%s); the coordinator runs without metrics: "
            "free the port or choose another with --metrics-port / SEGUE_METRICS_PORT",
            settings.metrics_host,
            port,
            exc,
        )
        if depths is not None:
            depths.close()
        return None
    log.info("serving Prometheus metrics on http://%s:%d/metrics", settings.metrics_host, port)
    return server
