"""The demo, one function per step: synthesize three hospitals, ingest each as its own source,
show the catalog, check the lake for every identifier the generator wrote, and report.

`STEPS` is a plain list; later issues append their steps (linkage, views, fleet). Each step
takes the shared `DemoContext` and fills it in. This module is a door: it may import every domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from medhub.config import Settings, load_settings


@dataclass
class DemoContext:
    settings: Settings
    console: Console
    input_dir: Path
    hospitals: int = 3
    patients: int = 300
    seed: int = 7
    manifest: dict = field(default_factory=dict)
    summaries: list = field(default_factory=list)
    catalog: list = field(default_factory=list)
    leaks: dict[str, list[str]] = field(default_factory=dict)
    identifiers_checked: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def synthesize(ctx: DemoContext) -> None:
    """Write three synthetic hospitals' exports (FHIR, chest X-rays, ECGs) under the hub home."""
    from medhub.synth import generate

    ctx.console.rule("[bold]1. Synthesize hospitals")
    ctx.manifest = generate(ctx.input_dir, hospitals=ctx.hospitals, patients=ctx.patients, seed=ctx.seed)
    for h in ctx.manifest["hospitals"]:
        ctx.console.print(
            f"  {h['source_id']}: {h.get('name', '')} (FHIR as {h.get('fhir', '?')}, "
            f"ECG as {h.get('biosignal', '?')})"
        )
    ctx.console.print(f"  written to {ctx.input_dir}")


def ingest(ctx: DemoContext) -> None:
    """Ingest each hospital as its own source, through the privacy gate, into the lake."""
    from medhub.cli.ingest import summary_table
    from medhub.lake.intake import ingest_paths

    ctx.console.rule("[bold]2. Ingest (gate: keyed pseudonyms, de-identification)")
    for h in ctx.manifest["hospitals"]:
        source = h["source_id"]
        with Progress(
            TextColumn(f"  {source}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=ctx.console,
            transient=True,
        ) as bar:
            task = bar.add_task(source, total=None)

            def progress(event: str, payload: object, bar: Progress = bar, task: int = task) -> None:
                if event == "start":
                    bar.update(task, total=int(payload))  # type: ignore[arg-type]
                else:
                    bar.advance(task)

            ctx.summaries.append(
                ingest_paths(ctx.settings, source, [ctx.input_dir / source], progress=progress)
            )
    ctx.console.print(summary_table(ctx.summaries))


def show_catalog(ctx: DemoContext) -> None:
    """List the lake's datasets."""
    from medhub.cli.ingest import catalog_table
    from medhub.lake.catalog import catalog

    ctx.console.rule("[bold]3. Lake catalog")
    ctx.catalog = catalog(ctx.settings.lake_dir)
    ctx.console.print(catalog_table(ctx.catalog))


def check_privacy(ctx: DemoContext) -> None:
    """Search every lake file for every identifying string the generator wrote."""
    from medhub.lake.scan import scan_lake
    from medhub.synth import read_identifiers

    ctx.console.rule("[bold]4. Privacy check")
    identifiers = read_identifiers(ctx.input_dir)
    ctx.identifiers_checked = len(identifiers)
    ctx.leaks = scan_lake(ctx.settings.lake_dir, identifiers)
    if ctx.leaks:
        ctx.console.print(
            f"  [red]{len(ctx.leaks)} of {len(identifiers)} identifiers found in the lake[/red]"
        )
        for k, files in list(ctx.leaks.items())[:10]:
            ctx.console.print(
                f"    {k!r} in {files[0]}" + (f" and {len(files) - 1} more" if len(files) > 1 else "")
            )
    else:
        ctx.console.print(
            f"  none of {len(identifiers)} identifying strings (names, resident numbers, phones, "
            "addresses) appears in any lake file"
        )


def report(ctx: DemoContext) -> None:
    """A short readable report."""
    ctx.console.rule("[bold]Report")
    accepted = sum(s.accepted for s in ctx.summaries)
    quarantined = sum(s.quarantined for s in ctx.summaries)
    lake_bytes = sum(e.bytes for e in ctx.catalog)
    lines = [
        f"{len(ctx.manifest.get('hospitals', []))} hospitals, {ctx.patients} people (seed {ctx.seed})",
        f"{accepted:,} items landed in the lake ({lake_bytes / 1e6:.1f} MB in {len(ctx.catalog)} datasets), "
        f"{quarantined} quarantined (see `medhub quarantine list`)",
        f"privacy: {len(ctx.leaks)} of {ctx.identifiers_checked} identifying strings found in the lake"
        + (" [green]OK[/green]" if not ctx.leaks else " [red]LEAK[/red]"),
        "timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in ctx.timings.items()),
        f"hub home: {ctx.settings.home}   (keys, outside it: {ctx.settings.key_dir})",
        *ctx.notes,
    ]
    for line in lines:
        ctx.console.print("  " + line)


Step = Callable[[DemoContext], None]
STEPS: list[Step] = [synthesize, ingest, show_catalog, check_privacy, report]


def run_demo(
    settings: Settings | None = None,
    console: Console | None = None,
    steps: list[Step] | None = None,
    patients: int = 300,
    seed: int = 7,
) -> DemoContext:
    """Run the demo steps in order and return what they gathered."""
    settings = settings or load_settings()
    settings.ensure_dirs()
    ctx = DemoContext(
        settings=settings,
        console=console or Console(),
        input_dir=settings.home / "demo-input",
        patients=patients,
        seed=seed,
    )
    for step in steps or STEPS:
        t = time.perf_counter()
        step(ctx)
        ctx.timings[step.__name__] = time.perf_counter() - t
    return ctx
