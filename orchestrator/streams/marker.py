"""How a live stream input travels in a run's inputs: a marker naming its channel."""

from __future__ import annotations

from typing import Any

STREAM_KEY = "$stream"


def channel_key(source_run: str, port: str, consumer: str) -> str:
    """The channel of one live edge: the source run's ``port`` read by node ``consumer``."""
    return f"{source_run}/{port}/{consumer}"


def stream_marker(source_run: str, port: str, consumer: str) -> dict[str, Any]:
    """The input value of a live stream input: where its chunks come from."""
    return {STREAM_KEY: channel_key(source_run, port, consumer)}


def marked_channel(value: Any) -> str | None:
    """The channel a live stream input's value names, or ``None`` for a plain value."""
    if isinstance(value, dict) and len(value) == 1 and STREAM_KEY in value:
        key = value[STREAM_KEY]
        return key if isinstance(key, str) else None
    return None


def job_of_channel(key: str) -> str:
    """The job a channel belongs to (the first part of its source run id)."""
    return key.split(":", 1)[0]
