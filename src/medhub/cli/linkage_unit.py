"""CLI for the linkage unit over the gate's deposits: `medhub linkage run|pseudonyms|rotate` (thin)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

linkage_app = typer.Typer(
    help="The linkage unit: link the gate's token deposits into master IDs, hand out project pseudonyms.",
    no_args_is_help=True,
)


@linkage_app.command("run")
def run(
    round_id: str = typer.Option(None, "--round", help="linkage round (default: the latest)"),
    threshold: float = typer.Option(0.5, help="match probability to accept a pair"),
) -> None:
    """Link every source's deposited tokens and cluster them into master IDs (kept inside the unit)."""
    from medhub.config import load_settings
    from medhub.privacy.linkage.registry import run_linkage
    from medhub.privacy.linkage.unit import LinkageError

    console = Console()
    try:
        with console.status("linking the deposited tokens..."):
            res = run_linkage(load_settings(), round_id, threshold)
    except (LinkageError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    t = Table(title=f"linkage round {res.round_id}")
    t.add_column("source")
    t.add_column("records", justify="right")
    for s, n in res.per_source.items():
        t.add_row(s, str(n))
    console.print(t)
    console.print(
        f"{res.records} records from {res.sources} sources -> {res.masters} persons, "
        f"{res.multi_source} seen at 2+ sources ({res.links} links)"
    )


@linkage_app.command("pseudonyms")
def pseudonyms(
    project: str = typer.Option(..., "--project", help="project name (one key per project)"),
    out: Path = typer.Option(None, "--out", help="CSV to write (default: print to stdout)"),
    round_id: str = typer.Option(None, "--round", help="linkage round (default: the latest)"),
) -> None:
    """Per-project pseudonyms: source, source pseudonym, HMAC(master ID, project key)."""
    from medhub.config import load_settings
    from medhub.privacy.linkage.registry import project_pseudonym_rows, write_pseudonyms_csv
    from medhub.privacy.linkage.unit import LinkageError

    try:
        rows = project_pseudonym_rows(load_settings(), project, round_id)
    except (LinkageError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    if out is None:
        typer.echo("source,source_pseudonym,project_pseudonym")
        for r in rows:
            typer.echo(",".join(r))
    else:
        write_pseudonyms_csv(rows, out)
        Console(stderr=True).print(f"{len(rows)} pseudonyms for project {project} -> {out}")


@linkage_app.command("rotate")
def rotate(
    round_id: str = typer.Option(None, "--round", help="id of the new round (default: a timestamp)"),
) -> None:
    """Open a new linkage round (the custodian issues a fresh token key); later deposits use it."""
    from medhub.config import load_settings
    from medhub.privacy.linkage.intake import rotate_round

    try:
        rid = rotate_round(load_settings(), round_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(rid)


def register(app: typer.Typer) -> None:
    """Attach `linkage` to the root app."""
    app.add_typer(linkage_app, name="linkage")
