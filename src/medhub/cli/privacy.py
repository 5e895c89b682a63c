"""CLI commands for the privacy domain (thin wrappers; the work happens in medhub.privacy).

`register(app)` attaches each sub-app; add new ones (for example `link`) by appending a function
that builds them and a line in `register`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

deid_app = typer.Typer(
    help="De-identify files outside the ingest path (a site's own check).", no_args_is_help=True
)


def _safe_private(values: list[str]) -> frozenset[tuple[str, int]]:
    out = set()
    for v in values:
        creator, _, elem = v.rpartition(":")
        if not creator or not elem:
            raise typer.BadParameter(
                f"{v!r}: expected CREATOR:ELEMENT, for example 'SIEMENS CSA HEADER:0x08'"
            )
        out.add((creator.strip().upper(), int(elem, 0) & 0xFF))
    return frozenset(out)


@deid_app.command("dicom")
def deid_dicom(
    in_dir: Path = typer.Argument(..., help="folder of DICOM files (searched recursively)"),
    out_dir: Path = typer.Argument(..., help="where de-identified files go, at the same relative paths"),
    source: str = typer.Option("local", help="source name: selects the keys (pseudonyms, date shift, UIDs)"),
    shift_dates: bool = typer.Option(True, help="retain longitudinal information with shifted dates"),
    patient_characteristics: bool = typer.Option(True, help="retain age, sex, size, weight..."),
    device_identity: bool = typer.Option(True, help="retain station name, serial numbers..."),
    clean_descriptors: bool = typer.Option(True, help="keep descriptions, cleaned of identifiers"),
    safe_private: list[str] = typer.Option([], help="keep a private attribute, CREATOR:ELEMENT (repeatable)"),
    report: Path | None = typer.Option(None, help="write the per-file report as CSV here"),
) -> None:
    """De-identify IN_DIR into OUT_DIR with the gate's PS3.15 Annex E engine; held files are not written."""
    from medhub.config import load_settings
    from medhub.privacy.deid.batch import deid_tree, input_files
    from medhub.privacy.deid.common import Policy, source_secrets

    allow = _safe_private(safe_private)
    policy = Policy(
        shift_dates=shift_dates,
        retain_patient_characteristics=patient_characteristics,
        retain_device_identity=device_identity,
        clean_descriptors=clean_descriptors,
        retain_safe_private=bool(allow),
        safe_private=allow,
    )
    console = Console()
    if not in_dir.is_dir():
        console.print(f"[red]{in_dir}: not a folder[/red]")
        raise typer.Exit(2)
    secrets = source_secrets(load_settings(), source)
    total = sum(1 for _ in input_files(in_dir, out_dir))
    columns = (TextColumn("de-identifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("deid", total=total)
        results = deid_tree(in_dir, out_dir, secrets, policy, on_file=lambda _r: bar.advance(task))
    table = Table(title=f"medhub deid dicom: {in_dir} -> {out_dir}")
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("reason / changes", overflow="fold")
    for r in results:
        detail = r.reason or ", ".join(f"{k} {v}" for k, v in sorted(r.changes.items()))
        style = {"written": "green", "held": "yellow", "skipped": "dim", "failed": "red"}[r.status]
        table.add_row(r.path, f"[{style}]{r.status}[/{style}]", detail)
    console.print(table)
    counts = {s: sum(r.status == s for r in results) for s in ("written", "held", "skipped", "failed")}
    console.print(
        f"{counts['written']} written, {counts['held']} held for review (not written), "
        f"{counts['skipped']} not DICOM, {counts['failed']} failed"
    )
    if report:
        with report.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "status", "reason", "changes"])
            for r in results:
                w.writerow(
                    [r.path, r.status, r.reason, "; ".join(f"{k}={v}" for k, v in sorted(r.changes.items()))]
                )
    if counts["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(deid_app, name="deid")
