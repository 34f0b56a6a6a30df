#!/usr/bin/env python3
"""Liveness probe for Segue's services: is the heartbeat file fresh?

    python healthcheck.py [PATH] [--max-age SECONDS]

Exit 0 when PATH (default: ``$SEGUE_HEARTBEAT_PATH``) holds a timestamp (seconds
since the epoch, as ``orchestrator.heartbeat.beat`` writes it) younger than
``--max-age`` seconds (default: six heartbeat intervals, ``$SEGUE_HEARTBEAT_INTERVAL_S``
or 5, so 30 seconds); exit 1 when it is older, missing or unreadable.

The coordinator and a worker's heartbeat bootstep write the file; probes read
it instead of running ``celery inspect ping``, which is slow and fails on a
busy worker. Standard library only, and no Segue import: a probe must be cheap
and must not depend on the process it checks.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

DEFAULT_INTERVAL_S = 5.0
INTERVALS = 6


def default_max_age() -> float:
    """Six heartbeat intervals: a worker that missed that many beats is stuck."""
    try:
        interval = float(os.environ.get("SEGUE_HEARTBEAT_INTERVAL_S", DEFAULT_INTERVAL_S))
    except ValueError:
        interval = DEFAULT_INTERVAL_S
    if not math.isfinite(interval) or interval <= 0:
        interval = DEFAULT_INTERVAL_S
    return INTERVALS * interval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when a heartbeat file is fresh.")
    parser.add_argument(
        "path",
        nargs="?",
        default=os.environ.get("SEGUE_HEARTBEAT_PATH"),
        help="heartbeat file (default: $SEGUE_HEARTBEAT_PATH)",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="seconds a beat stays fresh (default: 6 x $SEGUE_HEARTBEAT_INTERVAL_S)",
    )
    args = parser.parse_args(argv)
    if not args.path:
        print("unhealthy: no heartbeat file (pass a path or set SEGUE_HEARTBEAT_PATH)")
        return 1
    max_age = args.max_age if args.max_age is not None else default_max_age()
    try:
        with open(args.path, encoding="utf-8") as handle:
            stamp = float(handle.read().strip())
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {args.path}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: cannot read the heartbeat at {args.path}: {exc}")
        return 1
    if not math.isfinite(stamp):
        print(f"unhealthy: {args.path} holds no timestamp")
        return 1
    age = time.time() - stamp
    if age > max_age:
        print(f"unhealthy: last heartbeat {age:.1f}s ago (limit {max_age:g}s)")
        return 1
    print(f"healthy: last heartbeat {max(age, 0.0):.1f}s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
