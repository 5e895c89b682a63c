"""The demo, one function per step: synthesize three hospitals, ingest each as its own source,
show the catalog, check the lake for every identifier the generator wrote, and report; then link
patients across hospitals in the linkage unit (scored against the generator's answer key), run
SQL-on-FHIR views over the lake, and simulate the example fleet under medhub's policy and baselines.

`STEPS` is a plain list; later issues append their steps. Each step
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
    linkage: dict[str, float] = field(default_factory=dict)
    view_rows: dict[str, int] = field(default_factory=dict)
    fleet_energy: dict[str, float] = field(default_factory=dict)


def synthesize(ctx: DemoContext) -> None:
    """Write three synthetic hospitals' exports (FHIR, chest X-rays, ECGs) under the hub home."""
    from medhub.synth import generate

    ctx.console.rule("[bold]1. Synthesize hospitals")
    # The demo owns this folder: a second `make demo` writes the same bytes again (deterministic),
    # and ingestion then shows that re-ingesting them adds nothing.
    ctx.manifest = generate(
        ctx.input_dir, hospitals=ctx.hospitals, patients=ctx.patients, seed=ctx.seed, overwrite=True
    )
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
    duplicate = sum(s.duplicate for s in ctx.summaries)
    lake_bytes = sum(e.bytes for e in ctx.catalog)
    lines = [
        f"{len(ctx.manifest.get('hospitals', []))} hospitals, {ctx.patients} people (seed {ctx.seed})",
        f"{accepted:,} items landed in the lake this run, {duplicate:,} duplicates skipped "
        f"({lake_bytes / 1e6:.1f} MB in {len(ctx.catalog)} datasets), "
        f"{quarantined} quarantined (see `medhub quarantine list`)",
        f"privacy: {len(ctx.leaks)} of {ctx.identifiers_checked} identifying strings found in the lake"
        + (" [green]OK[/green]" if not ctx.leaks else " [red]LEAK[/red]"),
        *_later_steps_lines(ctx),
        "timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in ctx.timings.items()),
        f"hub home: {ctx.settings.home}   (keys, outside it: {ctx.settings.key_dir})",
        *ctx.notes,
    ]
    for line in lines:
        ctx.console.print("  " + line)


def _later_steps_lines(ctx: DemoContext) -> list[str]:
    """Report lines for the linkage, views and fleet steps (when they ran)."""
    lines = []
    lk = ctx.linkage
    if lk:
        lines.append(
            f"linkage: {int(lk['records'])} patient records -> {int(lk['masters'])} master persons, "
            f"{int(lk['multi_source'])} at 2+ hospitals; F1 {lk['f1']:.4f} against the answer key"
        )
    if ctx.view_rows:
        lines.append("views: " + ", ".join(f"{k} {v:,} rows" for k, v in ctx.view_rows.items()))
    if ctx.fleet_energy:
        lines.append("fleet: " + ", ".join(f"{k} {v:.3f} kWh" for k, v in ctx.fleet_energy.items()))
    return lines


# --- linkage, views and fleet (issue 3 part 4) ----------------------------------------------------


def _pair_scores(predicted: dict, truth: dict) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering (record -> cluster) against truth (-> person)."""

    def pairs(assign: dict) -> set:
        groups: dict = {}
        for rec, c in assign.items():
            groups.setdefault(c, []).append(rec)
        return {(a, b) for g in groups.values() for a in g for b in g if a < b}

    p, t = pairs(predicted), pairs(truth)
    precision = len(p & t) / len(p) if p else 1.0
    recall = len(p & t) / len(t) if t else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def link(ctx: DemoContext) -> None:
    """Run the linkage unit over the tokens the gate deposited, and score it against the answer key."""
    import orjson

    from medhub.privacy.deid.common import source_secrets
    from medhub.privacy.linkage.registry import project_pseudonym_rows, run_linkage

    ctx.console.rule("[bold]5. Link patients across hospitals (tokens only, in the linkage unit)")
    res = run_linkage(ctx.settings)
    # Project pseudonyms agree exactly when master IDs do, so they are the clustering to score.
    cluster = {(s, p): q for s, p, q in project_pseudonym_rows(ctx.settings, "demo")}
    # The demo alone holds the generator's answer key: re-derive each record's source pseudonym from its
    # MRN with the gate's pseudonym function, in memory only (the mapping is never stored).
    predicted: dict = {}
    truth: dict = {}
    path = ctx.input_dir / "truth" / "identities.jsonl"
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        t = orjson.loads(line)
        rec = (t["source_id"], t["mrn"])
        pseud = source_secrets(ctx.settings, t["source_id"]).patient(t["mrn"])
        truth[rec] = t["person_id"]
        predicted[rec] = cluster.get((t["source_id"], pseud), f"unlinked:{rec}")
    precision, recall, f1 = _pair_scores(predicted, truth)
    people = len(set(truth.values()))
    ctx.linkage = {
        "records": res.records,
        "masters": res.masters,
        "multi_source": res.multi_source,
        "people": people,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    ctx.console.print(
        f"  {res.records} patient records from {res.sources} hospitals -> {res.masters} master persons "
        f"({people} in the answer key); {res.multi_source} seen at 2+ hospitals"
    )
    ctx.console.print(
        f"  against the answer key: precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f} "
        "(pairs of records; master IDs stay in the unit, projects get HMAC(master, project key))"
    )


# Small ViewDefinitions carried here so that the demo needs nothing from ../shared (the names follow
# the SQL-on-FHIR v2 examples; columns chosen for what survives the gate).
DEMO_VIEWS: list[dict] = [
    {
        "resourceType": "ViewDefinition",
        "name": "patient_demographics",
        "resource": "Patient",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()"},
                    {"name": "gender", "path": "gender"},
                    {"name": "birth_date", "path": "birthDate"},
                ]
            },
            {"forEachOrNull": "address.first()", "column": [{"name": "state", "path": "state"}]},
        ],
    },
    {
        "resourceType": "ViewDefinition",
        "name": "condition_flat",
        "resource": "Condition",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()"},
                    {"name": "patient_id", "path": "subject.getReferenceKey(Patient)"},
                    {"name": "onset", "path": "onset.ofType(dateTime)"},
                ]
            },
            {
                "forEach": "code.coding.first()",
                "column": [{"name": "code", "path": "code"}, {"name": "display", "path": "display"}],
            },
        ],
    },
    {
        "resourceType": "ViewDefinition",
        "name": "encounter_flat",
        "resource": "Encounter",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()"},
                    {"name": "patient_id", "path": "subject.getReferenceKey(Patient)"},
                    {"name": "status", "path": "status"},
                    {"name": "class", "path": "class.code"},
                    {"name": "start", "path": "period.start"},
                ]
            }
        ],
    },
]


def views(ctx: DemoContext) -> None:
    """Run a few SQL-on-FHIR v2 views over the lake and show their first rows."""
    from rich.table import Table

    from medhub.views.run import lake_source, run_view_arrow

    ctx.console.rule("[bold]6. SQL-on-FHIR views over the lake")
    source = lake_source(ctx.settings.lake_dir)
    for vd in DEMO_VIEWS:
        table = run_view_arrow(vd, source)
        ctx.view_rows[vd["name"]] = table.num_rows
        t = Table(title=f"{vd['name']}: {table.num_rows} rows", title_justify="left")
        for name in table.column_names:
            t.add_column(name, overflow="ellipsis", max_width=36)
        for row in table.slice(0, 3).to_pylist():
            t.add_row(*("" if v is None else str(v) for v in row.values()))
        ctx.console.print(t)


def fleet(ctx: DemoContext) -> None:
    """Simulate the example fleet (central DC + 5 kW hospital micro DC): medhub's policy and baselines."""
    import numpy as np
    from rich.table import Table

    from medhub.fleet.model import load_fleet
    from medhub.fleet.report import compare_inference
    from medhub.fleet.traces import RequestTrace, inference_workload

    ctx.console.rule("[bold]7. Fleet: energy-aware scheduling under power caps")
    path = Path(__file__).resolve().parents[2] / "examples" / "fleet" / "micro-dc.yaml"
    if not path.exists():
        ctx.console.print(f"  skipped: the example fleet {path} is not here (a source checkout has it)")
        return
    f = load_fleet(path)
    # A short Poisson trace (the demo needs nothing from ../shared): 2,000 requests at 20 per second,
    # log-normal prompt and output lengths shaped like a chat service.
    rng = np.random.default_rng(ctx.seed)
    n = 2000
    arrival = np.cumsum(rng.exponential(1 / 20.0, n))
    trace = RequestTrace(
        arrival - arrival[0],
        rng.lognormal(6.5, 1.0, n).astype(np.int64).clip(1, 8000),
        rng.lognormal(5.0, 0.8, n).astype(np.int64).clip(1, 2000),
    )
    cmp = compare_inference(f, inference_workload(f, trace), ["first-fit", "capacity-proportional", "medhub"])
    t = Table(title=f"{f.name}: {n} requests, Poisson 20/s", title_justify="left")
    for c in ("policy", "kWh", "J/token", "x LP bound", "in target", "p99 s", "over cap s", "residency"):
        t.add_column(c, justify="left" if c == "policy" else "right")
    for r in cmp.rows():
        t.add_row(
            r["policy"],
            f"{r['kWh']:.3f}",
            f"{r['J/token']:.2f}",
            f"{r['x LP']:.2f}",
            f"{r['in target']:.1%}",
            f"{r['p99 s']:.1f}",
            f"{r['over cap s']:.0f}",
            str(r["residency"]),
        )
        ctx.fleet_energy[r["policy"]] = r["kWh"]
    ctx.console.print(t)
    base = ctx.fleet_energy.get("first-fit")
    if base:
        ctx.console.print(f"  medhub uses {ctx.fleet_energy['medhub'] / base:.2f}x the energy of first-fit")


Step = Callable[[DemoContext], None]
STEPS: list[Step] = [synthesize, ingest, show_catalog, check_privacy, link, views, fleet, report]


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
