"""CLI commands for the ingest domain (thin wrappers; the work happens in medhub.ingest and medhub.lake).

medhub ingest --source SOURCE_ID PATH...
medhub quarantine list [--source S] [--json]
medhub catalog [--json]
"""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medhub.config import load_settings

quarantine_app = typer.Typer(
    help="Items held back from the lake (bad input, or held for review).", no_args_is_help=True
)


def summary_table(summaries: list) -> Table:
    """Per source and type: accepted, duplicate, quarantined."""
    t = Table(title="ingest summary")
    for col in ("source", "type", "accepted", "duplicate", "quarantined"):
        t.add_column(col, justify="right" if col in ("accepted", "duplicate", "quarantined") else "left")
    for s in summaries:
        for typ, c in sorted(s.counts.items()):
            t.add_row(s.source, typ, str(c.accepted), str(c.duplicate), str(c.quarantined))
        files = ", ".join(f"{k} {v}" for k, v in sorted(s.files.items()))
        t.add_row(s.source, f"[dim]files: {files}[/dim]", "", "", "", end_section=True)
    return t


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest (folders are walked)."),
    source: str = typer.Option(..., "--source", "-s", help="Source (hospital) id the files come from."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    commit_seconds: float = typer.Option(30.0, help="Commit to the lake at least this often (seconds)."),
) -> None:
    """Ingest FHIR (NDJSON, Bundles), DICOM, WFDB and EDF+ files for one source into the lake."""
    from medhub.lake.intake import ingest_paths
    from medhub.lake.writer import LakeBusy

    settings = load_settings()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}", param_hint="PATHS")
    try:
        summary = ingest_paths(settings, source, paths, progress=not json_out, commit_seconds=commit_seconds)
    except (ValueError, LakeBusy) as exc:
        raise typer.BadParameter(str(exc), param_hint="--source" if "source" in str(exc) else None) from exc
    if json_out:
        typer.echo(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    out = Console()
    out.print(summary_table([summary]))
    for p in summary.problems[:20]:
        where = f"{p.source_file}" + (f":{p.line}" if p.line else "")
        out.print(Text.assemble(("quarantined ", "yellow"), f"{where}: {p.reason}"), soft_wrap=True)
    if len(summary.problems) > 20:
        out.print(f"... and {len(summary.problems) - 20} more (medhub quarantine list)")


@quarantine_app.command("list")
def quarantine_list(
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int | None = typer.Option(None, help="At most this many entries."),
) -> None:
    """List quarantined items: file, line, reason, when, and where the copy of the file is kept."""
    from medhub.store import open_store
    from medhub.store.ops import list_quarantine

    settings = load_settings()
    engine = open_store(settings.database_url)
    rows = list_quarantine(engine, source, limit)
    engine.dispose()
    if json_out:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    t = Table(title=f"quarantine ({len(rows)})")
    for col in ("id", "source", "file", "line", "kind", "reason", "time"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(
            str(r["id"]),
            r["source_id"],
            r["file"],
            str(r["line"] or ""),
            r["kind"],
            r["reason"],
            str(r["created_at"])[:19],
        )
    Console().print(t)


def catalog_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the lake's datasets: kind, source, type, rows, time range, size."""
    from medhub.lake.catalog import catalog

    settings = load_settings()
    entries = catalog(settings.lake_dir)
    if json_out:
        typer.echo(orjson.dumps([e.as_dict() for e in entries], option=orjson.OPT_INDENT_2).decode())
        return
    Console().print(catalog_table(entries))


def catalog_table(entries: list) -> Table:
    t = Table(title="lake catalog")
    for col in ("kind", "source", "type", "count", "from", "to", "size"):
        t.add_column(col, justify="right" if col in ("count", "size") else "left")
    for e in entries:
        t.add_row(
            e.kind,
            e.source,
            e.type,
            f"{e.count:,}",
            (e.time_min or "")[:10],
            (e.time_max or "")[:10],
            _size(e.bytes),
        )
    return t


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("ingest")(ingest)
    app.command("catalog")(catalog_cmd)
    app.add_typer(quarantine_app, name="quarantine")
