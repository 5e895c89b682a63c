"""CLI commands for the synth domain (thin wrappers; the work happens in medhub.synth)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
