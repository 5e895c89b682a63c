"""CLI commands for the fleet domain (thin wrappers; the work happens in medhub.fleet).

    medhub fleet simulate --fleet FLEET.yaml --trace NAME|PATH --policy NAME [--scale X] --out results.json
    medhub fleet compare  --fleet FLEET.yaml --trace NAME|PATH [--scale X] [--plot power.png]

A trace named `philly`, a folder or a `.trace` file is a training trace (--scale then compresses job
arrivals, --limit counts jobs); anything else is an Azure-style inference CSV (--scale compresses
inter-arrival times, --limit counts requests).
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

fleet_app = typer.Typer(
    help="Simulate and compare scheduling policies on an accelerator fleet.", no_args_is_help=True
)

FLEET = typer.Option(..., "--fleet", help="YAML fleet file (see examples/fleet/).")
TRACE = typer.Option(..., "--trace", help="azure-conv, azure-code, philly, or a path.")
SCALE = typer.Option(1.0, "--scale", help="Arrival-rate scale (50 = inter-arrival times / 50).")
LIMIT = typer.Option(None, "--limit", help="Requests (inference) or jobs (training) to replay.")
START = typer.Option(0, "--start", help="First trace row of the window.")


def _is_training(trace: str) -> bool:
    p = Path(trace)
    return trace == "philly" or p.is_dir() or p.suffix == ".trace"


def _load(fleet: Path, trace: str, scale: float, limit: int | None, start: int):
    from medhub.fleet.model import load_fleet
    from medhub.fleet.traces import inference_workload, load_azure_trace, load_philly_jobs, resolve_trace

    f = load_fleet(fleet)
    path = resolve_trace(trace)
    if _is_training(trace):
        owners = [o.name for o in f.owners]
        return (
            f,
            "training",
            load_philly_jobs(path, limit=limit or 400, start=start, time_scale=scale, owners=owners),
        )
    return (
        f,
        "inference",
        inference_workload(f, load_azure_trace(path), scale=scale, start=start, limit=limit),
    )


def _errors():
    from medhub.fleet.bound import BoundError
    from medhub.fleet.inference_sim import PolicyError
    from medhub.fleet.model import FleetError
    from medhub.fleet.profiles import ProfileError
    from medhub.fleet.traces import TraceError

    return (FleetError, ProfileError, TraceError, PolicyError, BoundError, ValueError)


def _dump(obj) -> bytes:
    def default(o):
        if hasattr(o, "item"):
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(type(o))

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        return o

    return orjson.dumps(clean(obj), default=default, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def simulate(
    fleet: Path = FLEET,
    trace: str = TRACE,
    policy: str = typer.Option(
        "medhub",
        "--policy",
        help="Inference: first-fit, capacity-proportional, medhub; "
        "training: fifo, fifo-strict, gavel, gavel-lp, medhub.",
    ),
    scale: float = SCALE,
    limit: int | None = LIMIT,
    start: int = START,
    out: Path | None = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Replay a trace on a fleet under one policy and report energy, latency, JCT and cap violations."""
    console = Console()
    try:
        f, kind, load = _load(fleet, trace, scale, limit, start)
        if kind == "training":
            from medhub.fleet.training_policies import training_policy
            from medhub.fleet.training_sim import simulate_training

            with console.status(f"simulating {len(load)} training jobs under {policy}"):
                res = simulate_training(f, load, training_policy(policy))
            summary = res.summary()
        else:
            from medhub.fleet.bound import energy_lower_bound
            from medhub.fleet.inference_policies import inference_policy
            from medhub.fleet.inference_sim import simulate_inference

            with console.status(f"simulating {load.description} under {policy}"):
                res = simulate_inference(f, load, inference_policy(policy))
                lb = energy_lower_bound(f, load)
            summary = res.summary() | {
                "lp_bound_j": lb.energy_j,
                "lp_bound_j_per_token": lb.j_per_token,
                "vs_lp_bound": res.energy_j / lb.energy_j,
            }
    except _errors() as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    table = Table(title=f"{kind} on {f.name}: {policy}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    if out:
        out.write_bytes(_dump({"kind": kind, "fleet": str(fleet), "trace": trace, "scale": scale, **summary}))
        console.print(f"results -> {out}")


def compare(
    fleet: Path = FLEET,
    trace: str = TRACE,
    scale: float = SCALE,
    limit: int | None = LIMIT,
    start: int = START,
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of power over time per site here."),
    out: Path | None = typer.Option(None, "--out", help="Write every policy's results as JSON here."),
) -> None:
    """Run every policy on the same load and print one table (with the LP energy bound for inference)."""
    from medhub.fleet.report import compare_inference, compare_training, plot_power

    console = Console()
    try:
        f, kind, load = _load(fleet, trace, scale, limit, start)
        with console.status(f"running every {kind} policy"):
            cmp = (
                compare_training(f, load, horizon_over=["gavel", "gavel-lp", "medhub"])
                if kind == "training"
                else compare_inference(f, load)
            )
    except _errors() as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    rows = cmp.rows()
    console = Console(width=max(console.width, 150))
    title = f"{kind} on {f.name}"
    if kind == "inference":
        title += f" — {load.description}"
        if cmp.bound:
            title += f"; LP bound {cmp.bound.energy_j / 3.6e6:.4f} kWh ({cmp.bound.j_per_token:.4f} J/token)"
        else:
            title += f"; LP bound unavailable: {cmp.bound_error}"
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for r in rows:
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()))
    console.print(table)
    if plot:
        caps = {s.name: s.power_cap_w for s in f.sites}
        series = {p: r.power_series for p, r in cmp.results.items()}
        plot_power(series, caps, plot, time_unit="s" if kind == "inference" else "d")
        console.print(f"power plot -> {plot}")
    if out:
        doc = {"kind": kind, "fleet": str(fleet), "trace": trace, "scale": scale, "policies": rows}
        if kind == "inference" and cmp.bound:
            doc["lp_bound_j"] = cmp.bound.energy_j
        out.write_bytes(_dump(doc))
        console.print(f"results -> {out}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    fleet_app.command()(simulate)
    fleet_app.command()(compare)
    app.add_typer(fleet_app, name="fleet")
