"""``python -m orchestrator.cli`` runs the ``segue`` command line."""

from orchestrator.cli import main

main()
