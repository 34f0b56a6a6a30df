"""``segue ui``: the operations page over the same store and broker as every command."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.common import BrokerOpt, DatabaseOpt, settings_from
from orchestrator.cli.output import EXIT_FAILED, EXIT_INVALID, err, fail
from orchestrator.settings import Settings
from orchestrator.store import StoreError

HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on")]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on")]


def page_token(settings: Settings, host: str) -> tuple[str, bool]:
    """The page's token and whether reads need it too; exit 2 on a non-loopback
    address without ``SEGUE_UI_TOKEN``."""
    from orchestrator.ui import is_loopback, new_token

    loopback = is_loopback(host)
    if settings.ui_token:
        return settings.ui_token, not loopback
    if not loopback:
        fail(
            f"refusing to serve the operations page on {host}, which is not a loopback "
            "address, without a token: set SEGUE_UI_TOKEN (anyone who can reach the page "
            "could read your jobs), or use --host 127.0.0.1",
            EXIT_INVALID,
        )
    return new_token(), False


def ui(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8484,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Serve the operations page: jobs, graphs, loops, health, live events, controls."""
    settings = settings_from(broker_url, database_url)
    token, guard_reads = page_token(settings, host)
    from orchestrator.ui import address, bind, cluster_sources, create_app, serve

    try:
        sock = bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc}); choose another --port", EXIT_FAILED)
    try:
        sources, close = cluster_sources(settings)
    except StoreError as exc:
        sock.close()
        fail(f"{exc}\nCheck SEGUE_DATABASE_URL or --database-url.", EXIT_FAILED)
    url = address(host, sock)
    shown = "the token in SEGUE_UI_TOKEN" if settings.ui_token else "a token made up for this run"
    err.print(f"operations page: {url}/jobs?token={token}", markup=False)
    err.print(f"  control actions need {shown} (the address above hands it to the page)")
    try:
        serve(create_app(sources, token, guard_reads), sock)
    finally:
        close()
        sock.close()
