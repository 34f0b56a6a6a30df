"""A node run's id: ``{job}:{loop}:{iteration}:{node}``, built and read in one place.

The id is deterministic (DESIGN section 3, "Identity and exactly-once
recording"): it is the Celery task id, the store's primary key and a node's
idempotency key. Job ids are generated hex, loop names and node ids are
identifiers, so none holds a ``:``; a node inside a group is named by its path,
``group.item.node``, whose dots never clash with the separator.
"""

from __future__ import annotations

from typing import NamedTuple

SEPARATOR = ":"


class RunId(NamedTuple):
    """The parts of a node run's id; ``str()`` of it is the id itself.

    Attributes:
        job: The job's id.
        loop: The loop's name (``main`` for the main stage).
        iteration: The loop iteration (0 in the main stage).
        node: The node's id, or its path ``group.item.node`` inside a group.
    """

    job: str
    loop: str
    iteration: int
    node: str

    def __str__(self) -> str:
        return f"{self.job}:{self.loop}:{self.iteration}:{self.node}"

    @classmethod
    def parse(cls, text: str) -> RunId:
        """The parts of the run id ``text``.

        Raises:
            ValueError: ``text`` is not ``{job}:{loop}:{iteration}:{node}`` with
                an integer iteration.
        """
        parts = text.split(SEPARATOR, 3)
        if len(parts) == 4 and all(parts):
            job, loop, iteration, node = parts
            try:
                return cls(job, loop, int(iteration), node)
            except ValueError:
                pass
        raise ValueError(
            f"run id {text!r} is not {{job}}:{{loop}}:{{iteration}}:{{node}} "
            "with an integer iteration"
        )

    @staticmethod
    def prefix(job: str, loop: str, iteration: int) -> str:
        """What the ids of every run of one iteration start with (the node's path follows)."""
        return f"{job}:{loop}:{iteration}:"

    @staticmethod
    def job_of(text: str) -> str:
        """The job part of a run id, without parsing the rest (the drivers' hot path)."""
        return text.split(SEPARATOR, 1)[0]

    @staticmethod
    def node_of(text: str) -> str:
        """The node part of a run id (its path inside a group), without parsing the rest."""
        return text.split(SEPARATOR, 3)[3]
