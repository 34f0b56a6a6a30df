"""Live progress of a running job on a terminal (rich)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.cli.output import err
from orchestrator.planner import MAIN
from orchestrator.views import JobEvent

STREAM_TAIL = 100
"""Characters of each stream's latest chunks the display shows."""
_STATUS_STYLE = {
    "running": "cyan",
    "paused": "yellow",
    "completed": "green",
    "stopped": "yellow",
    "failed": "red",
    "cancelled": "magenta",
    "pending": "dim",
}


class ProgressView:
    """What the progress display shows, folded from a job's events."""

    def __init__(self, workflow: str) -> None:
        self.workflow = workflow
        self.started = time.monotonic()
        self.loops: dict[str, dict[str, object]] = {}
        self.first_seen: dict[str, float] = {}
        self.nodes: dict[str, Counter[str]] = defaultdict(Counter)
        self.errors: list[str] = []
        self.previews: list[str] = []
        self.streams: dict[str, str] = {}  # "node.port" -> the text of its latest chunks
        self.chunks: Counter[str] = Counter()
        self.status = "pending"

    def apply(self, event: JobEvent) -> None:
        """Fold one event into the view."""
        if event.kind == "job":
            self.status = event.status or self.status
        elif event.kind == "loop" and event.loop:
            self.loops[event.loop] = {"status": event.status, **event.data}
            self.first_seen.setdefault(event.loop, time.monotonic())
        elif event.kind == "run" and event.node:
            self.nodes[event.node.split(".")[0]][event.status or "?"] += 1
            if event.status == "failed" and len(self.errors) < 200:
                self.errors.append(
                    f"{event.node} (iteration {event.iteration}): {event.data.get('error', '')}"
                )
        elif event.kind == "chunk" and event.node:
            name = f"{event.node}.{event.data.get('port')}"
            values = event.data.get("values") or []
            self.chunks[name] += len(values)
            text = self.streams.get(name, "") + "".join(
                v if isinstance(v, str) else f"{v!r} " for v in values
            )
            self.streams[name] = text[-STREAM_TAIL:]
        elif event.kind == "restart" and event.node:
            for name in [n for n in self.streams if n.startswith(f"{event.node}.")]:
                self.streams[name] = "↺ "
        elif event.kind == "preview":
            label = event.data.get("label") or event.node
            self.previews.append(f"{label}: {event.data.get('value')!s:.120}")
            del self.previews[:-5]

    def render(self) -> Group:
        """The current display."""
        elapsed = time.monotonic() - self.started
        loops = Table(title=f"{self.workflow} · {self.status} · {elapsed:.1f}s", expand=False)
        for column in ("loop", "status", "iterations", "it/s", "failed"):
            loops.add_column(column, justify="right" if column != "loop" else "left")
        for name, info in self.loops.items():
            status = str(info.get("status"))
            iterations = int(str(info.get("iterations", 0)))
            seconds = max(1e-6, time.monotonic() - self.first_seen.get(name, self.started))
            rate = f"{iterations / seconds:.1f}" if name != MAIN else ""
            loops.add_row(
                name,
                Text(status, style=_STATUS_STYLE.get(status, "")),
                str(iterations),
                rate,
                str(info.get("failed_iterations", 0)),
            )
        nodes = Table(show_header=True, expand=False)
        for column in ("node", "succeeded", "cached", "retrying", "failed", "skipped"):
            nodes.add_column(column, justify="right" if column != "node" else "left")
        for node, counts in list(self.nodes.items())[:30]:
            nodes.add_row(
                node,
                *(
                    str(counts.get(k, 0) or "")
                    for k in ("succeeded", "cached", "retrying", "failed", "skipped")
                ),
            )
        parts: list[Table | Text] = [loops, nodes]
        parts.extend(
            Text(f"≈ {name} [{self.chunks[name]}] {text}", style="cyan")
            for name, text in list(self.streams.items())[-5:]
        )
        parts.extend(Text(f"▸ {p}", style="dim") for p in self.previews)
        parts.extend(Text(f"✗ {e}", style="red") for e in self.errors[-3:])
        return Group(*parts)


def follow(events: Iterable[JobEvent], workflow: str) -> ProgressView:
    """Show live progress on stderr while consuming ``events``."""
    view = ProgressView(workflow)
    with Live(view.render(), console=err, refresh_per_second=8, transient=False) as live:
        last = 0.0
        for event in events:
            view.apply(event)
            now = time.monotonic()
            if now - last > 0.1 or event.final:
                live.update(view.render())
                last = now
        live.update(view.render())
    return view
