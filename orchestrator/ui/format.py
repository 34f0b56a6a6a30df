"""How the page writes times, ages and rates (Jinja filters)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def age(seconds: float | None) -> str:
    """``42s``, ``5m 03s``, ``2h 07m``, ``3d 4h``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def clock(at: float | None) -> str:
    """A stored timestamp as local ``MM-DD HH:MM:SS``, or ``-``."""
    return time.strftime("%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def hms(at: float | None) -> str:
    """A stored timestamp as local ``HH:MM:SS`` (a log line's time), or ``-``."""
    return time.strftime("%H:%M:%S", time.localtime(at)) if at else "-"


def rate(per_s: float) -> str:
    """Iterations per second, to a sensible precision."""
    if per_s <= 0:
        return "-"
    return f"{per_s:.1f}" if per_s < 100 else f"{per_s:.0f}"


FILTERS: dict[str, Callable[..., Any]] = {"age": age, "clock": clock, "hms": hms, "rate": rate}
