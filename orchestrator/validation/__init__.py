"""Workflow validation: every fault in one pass, each located."""

from nodes.context import MAIN
from orchestrator.validation.checker import Limits, ResolvedNode
from orchestrator.validation.typecheck import assignable, mimes_compatible
from orchestrator.validation.validator import ValidatedWorkflow, check, validate

__all__ = [
    "MAIN",
    "Limits",
    "ResolvedNode",
    "ValidatedWorkflow",
    "assignable",
    "check",
    "mimes_compatible",
    "validate",
]
