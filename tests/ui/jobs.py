"""Jobs and a served page for the operations-page tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator import Client, Workflow
from orchestrator.settings import Settings
from orchestrator.ui import Sources, UiServer, create_app, embedded_sources

TOKEN = "test-token-0123456789"


def ticker(stop: int = 100_000, interval_s: float = 0.08, nap_s: float = 0.01) -> Workflow:
    """A slow loop: ``ticks`` -> ``scaled`` -> ``nap`` (Sleep ``nap_s``) -> ``picky``
    (fails on 2, logging why) -> ``out``."""
    return Workflow.from_dict(
        {
            "name": "ticker",
            "nodes": [
                {
                    "id": "ticks",
                    "type": "Range",
                    "config": {"stop": stop, "interval_s": interval_s},
                },
                {"id": "gain", "type": "Constant", "config": {"value": 2}},
                {"id": "scaled", "type": "Math", "config": {"op": "mul"}},
                {"id": "nap", "type": "Sleep", "config": {"seconds": nap_s}},
                {"id": "picky", "type": "Flaky", "config": {"fail_on": [2]}},
                {"id": "out", "type": "Output", "config": {"name": "values"}},
            ],
            "edges": [
                {"from": "ticks.value", "to": "scaled.a"},
                {"from": "gain.value", "to": "scaled.b"},
                {"from": "scaled.result", "to": "nap.value"},
                {"from": "nap.value", "to": "picky.value"},
                {"from": "picky.value", "to": "out.value"},
            ],
            "loops": {"ticks": {"on_error": "continue"}},
        }
    )


@dataclass
class Served:
    """An embedded client, its page's sources and (when served) the page's address."""

    client: Client
    sources: Sources
    settings: Settings
    url: str = ""


@contextmanager
def embedded(home: Path, serve: bool = False) -> Iterator[Served]:
    """An embedded client over ``home`` and the page's sources over the same store."""
    settings = Settings(home=home, ui_token=TOKEN)
    with Client.embedded(settings=settings) as client:
        sources, release = embedded_sources(client, settings)
        served = Served(client, sources, settings)
        server = None
        if serve:
            server = UiServer(create_app(sources, TOKEN, guard_reads=False))
            served.url = server.url
        try:
            yield served
        finally:
            if server is not None:
                server.close()
            release()
