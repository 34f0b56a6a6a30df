"""``Comment``: a note on the canvas, kept with the workflow, never run."""

from __future__ import annotations

from pydantic import Field

from nodes.base import Node, NodeConfig, Role


class Comment(Node):
    """A note on the canvas: no ports, never runs.

    It is kept in the workflow file (a load and save round trip keeps it) and
    shown by ``segue plan``; the planner leaves it out of every loop.
    """

    role = Role.COMMENT

    class Config(NodeConfig):
        text: str = Field(description="The note")

    config: Config
