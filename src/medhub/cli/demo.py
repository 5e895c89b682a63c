"""CLI command for the demo (a thin wrapper over medhub.demo, the composition of all domains)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
