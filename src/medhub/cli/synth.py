"""CLI commands for the synth domain (thin wrappers; the work happens in medhub.synth)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write the hospitals into (empty or new)."),
    hospitals: int = typer.Option(3, "--hospitals", min=1, max=26, help="Number of hospitals."),
    patients: int = typer.Option(300, "--patients", min=1, help="Number of distinct people."),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed gives the same bytes."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier synth output in OUT."),
) -> None:
    """Write deterministic synthetic hospitals: FHIR R4, chest X-ray DICOM, 12-lead ECGs, an answer key."""
    from medhub.synth import generate

    console = Console()
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]synth[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("patient records", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            manifest = generate(
                out, hospitals=hospitals, patients=patients, seed=seed, overwrite=force, progress=tick
            )
        except (FileExistsError, ValueError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc
    elapsed = time.perf_counter() - start
    console.print(summary_table(out, manifest))
    console.print(f"{patients} people over {hospitals} hospitals, seed {seed}, in {elapsed:.1f} s -> {out}")
    console.print(f"answer key: {out / 'truth'} (not hospital data; never ingest it)")


def summary_table(out: Path, manifest: dict) -> Table:
    """Per hospital: formats and what was written."""
    table = Table(title="synthetic hospitals")
    numeric = ("patients", "FHIR resources", "DICOM", "ECG")
    for col in ("source", "name", "fhir", "biosignal", *numeric):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=col == "source")

    records = Counter()
    for line in (out / "truth" / "identities.jsonl").read_bytes().splitlines():
        records[orjson.loads(line)["source_id"]] += 1
    for h in manifest["hospitals"]:
        base = out / h["source_id"]
        n_fhir = 0
        for f in (base / "fhir").glob("*.ndjson"):
            with f.open("rb") as fh:
                n_fhir += sum(1 for _ in fh)
        for f in (base / "fhir" / "bundles").glob("*.json"):
            n_fhir += len(orjson.loads(f.read_bytes()).get("entry", []))
        n_dcm = sum(1 for _ in (base / "dicom").rglob("*.dcm"))
        n_ecg = sum(1 for _ in (base / "ecg").glob("*.hea")) + sum(1 for _ in (base / "ecg").glob("*.edf"))
        table.add_row(
            h["source_id"],
            h["name"],
            h["fhir"],
            h["biosignal"],
            str(records[h["source_id"]]),
            str(n_fhir),
            str(n_dcm),
            str(n_ecg),
        )
    return table


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command(name="synth")(synth)
