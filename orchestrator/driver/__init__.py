"""The one driver loop, and the components composed around it.

* :class:`Driver` takes typed inputs, lets each job's scheduler decide, and
  carries out the commands (:mod:`~orchestrator.driver.applier`).
* :class:`~orchestrator.driver.journal.Journal` journals every scheduler
  input; :func:`replay` rebuilds a job's state from its plan and journal.
* :class:`~orchestrator.driver.takeover.Takeover` adopts jobs and chases
  lost runs; :class:`Steward` holds leases and brings the store's requests.

The embedded engine and the coordinator each compose these over their own
executor and queue backend.
"""

from orchestrator.driver.driver import Driver
from orchestrator.driver.journal import INPUT_KIND, Journal, Replayed, replay
from orchestrator.driver.steward import (
    Steward,
    driven,
    embedded_owner,
    orphaned,
    owner_name,
)
from orchestrator.liveness import gone_locally

__all__ = [
    "INPUT_KIND",
    "Driver",
    "Journal",
    "Replayed",
    "Steward",
    "driven",
    "embedded_owner",
    "gone_locally",
    "orphaned",
    "owner_name",
    "replay",
]
