"""CLI command for the demo (a thin wrapper over medhub.demo, the composition of all domains)."""

from __future__ import annotations

import typer


def demo(
    patients: int = typer.Option(300, help="People across the synthetic hospitals."),
    seed: int = typer.Option(7, help="Random seed of the generator."),
) -> None:
    """Synthesize three hospitals, ingest them through the privacy gate, show the catalog, and report."""
    from medhub.demo import run_demo

    ctx = run_demo(patients=patients, seed=seed)
    if ctx.leaks:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("demo")(demo)
