"""CLI commands for the views domain (thin wrappers; the work happens in medhub.views)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

view_app = typer.Typer(
    help="SQL on FHIR v2 views: run, show SQL, materialize, conformance.", no_args_is_help=True
)
_err = Console(stderr=True)


def _fail(msg: str) -> None:
    _err.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(code=2)


def _source(source: str | None, paths: list[Path]) -> str:
    from medhub.config import load_settings
    from medhub.views.run import file_source, lake_source

    if source not in (None, "lake", "files"):
        _fail(f"--source must be 'lake' or be left out (files given as arguments), got {source!r}")
    if source == "lake" or not paths:
        if paths:
            _fail("give either --source lake or file paths, not both")
        return lake_source(load_settings().lake_dir)
    return file_source(paths)


@view_app.command("run")
def run(
    view: Path = typer.Argument(..., help="ViewDefinition JSON file"),
    paths: list[Path] = typer.Argument(
        None, help="NDJSON / JSON / Bundle files or folders (default: the lake)"
    ),
    source: str = typer.Option(None, "--source", help="'lake' to read the hub's lake"),
    out: Path = typer.Option(..., "--out", "-o", help="output .parquet, .csv or .ndjson"),
) -> None:
    """Run a view over FHIR files or the lake and write the table."""
    from medhub.views.definition import ViewError, parse_view
    from medhub.views.run import run_view_arrow, write_table

    try:
        v = parse_view(view)
        with _err.status(f"running {view.name}"):
            table = run_view_arrow(v, _source(source, paths or []))
        write_table(table, out)
    except ViewError as exc:
        _fail(str(exc))
    _err.print(f"{table.num_rows} rows, {table.num_columns} columns -> {out}")


@view_app.command("sql")
def sql(
    view: Path = typer.Argument(..., help="ViewDefinition JSON file"),
    dialect: str = typer.Option("duckdb", "--dialect", help="duckdb or spark"),
    table: str = typer.Option("resources", "--table", help="source table (resource_type, resource)"),
) -> None:
    """Print the SQL a view compiles to."""
    from medhub.views.compile import compile_view
    from medhub.views.definition import ViewError, parse_view
    from medhub.views.run import table_source
    from medhub.views.spark import to_spark

    try:
        text = compile_view(parse_view(view), table_source(table))
    except ViewError as exc:
        _fail(str(exc))
    if dialect == "spark":
        text = to_spark(text)
    elif dialect != "duckdb":
        _fail(f"--dialect must be duckdb or spark, got {dialect!r}")
    typer.echo(text)


@view_app.command("materialize")
def materialize(
    view: Path = typer.Argument(..., help="ViewDefinition JSON file"),
    name: str = typer.Option(None, "--name", help="table name (default: the view's name)"),
) -> None:
    """Run a view over the lake and store the result as lake/views/<name>.parquet."""
    from medhub.config import load_settings
    from medhub.views.definition import ViewError
    from medhub.views.run import materialize as do_materialize

    try:
        path = do_materialize(view, load_settings().lake_dir, name)
    except ViewError as exc:
        _fail(str(exc))
    _err.print(f"materialized -> {path}")


@view_app.command("conformance")
def conformance(
    directory: Path = typer.Argument(..., help="the sql-on-fhir-v2 suite (folder holding tests/*.json)"),
    report: Path = typer.Option(Path("test_report.json"), "--report", help="where to write test_report.json"),
) -> None:
    """Run the SQL on FHIR v2 conformance suite and write the specification's test_report.json."""
    from rich.progress import Progress

    from medhub.views.conformance import run_suite, summary
    from medhub.views.definition import ViewError

    try:
        with Progress(console=_err, transient=True) as progress:
            task = progress.add_task("conformance", total=None)
            result = run_suite(directory, progress=lambda f: progress.update(task, description=f))
    except ViewError as exc:
        _fail(str(exc))
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2))
    except OSError as exc:
        _fail(f"{report}: cannot write the report: {exc.strerror or exc}")
    passed, total = summary(result)
    for fname, body in result.items():
        for t in body["tests"]:
            if not t["result"]["passed"]:
                _err.print(f"[red]FAIL[/red] {fname}: {t['name']}: {t['result'].get('error', '')[:200]}")
    _err.print(f"{passed}/{total} passed -> {report}")
    if passed != total:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(view_app, name="view")
