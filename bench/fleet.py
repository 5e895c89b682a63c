"""Benchmark: medhub's energy-aware fleet policies against the baselines, in one run.

    .venv/bin/python bench/fleet.py [--quick] [--out results.json] [--plot-dir DIR]

1. Inference: the Azure LLM inference 2023 conversation trace at 50x (inter-arrival times / 50; the whole
   trace, 19,366 requests over 70 s of simulated time; --quick: the first 3,000) on
   examples/fleet/central.yaml (4 H100 + 8 L40S + 16 RNGD) and examples/fleet/micro-dc.yaml (the same 28
   devices, 4 L40S + 8 RNGD of them in a 5 kW hospital micro DC that must serve a third of the requests,
   the resident ones). Policies: first-fit, capacity-proportional (always on), medhub. Energy is compared
   with the LP lower bound (latency-target deadlines). Goals: medhub <= 1.15x the bound, >= 99% within
   target, no cap violation, >= 25% less energy than capacity-proportional.
2. Training: the first 400 Philly-derived jobs (Gavel seed=0 traces, all 15 VCs merged by arrival, jobs of
   <= 8 devices), arrivals stretched 10x (--scale 0.1) so the offered load is ~0.46 of the fleet; fifo,
   fifo-strict, gavel (greedy LAS), gavel-lp (Gavel's max-min LP), medhub. Goals: avg JCT >= 30% better
   than FIFO, within 10% of each Gavel-style policy, >= 10% less energy than each at equal completion
   time (integrated to the latest of their makespans).
3. Speed: wall time to simulate the 19,366-request trace (goal: 20k requests in < 60 s), and 2x tiled.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from medhub.fleet.model import load_fleet
from medhub.fleet.report import compare_inference, compare_training, plot_power
from medhub.fleet.traces import (
    RequestTrace,
    inference_workload,
    load_azure_trace,
    load_philly_jobs,
    resolve_trace,
)

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "fleet"


def goal(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def inference_part(
    name: str, fleet_file: Path, trace: RequestTrace, limit: int | None, plot_dir: Path | None
):
    fleet = load_fleet(fleet_file)
    wl = inference_workload(fleet, trace, scale=50, limit=limit)
    t0 = time.perf_counter()
    cmp = compare_inference(fleet, wl)
    wall = time.perf_counter() - t0
    lb = cmp.bound
    print(f"\n== inference: {name} ({fleet.name}) — {wl.description}")
    print(
        f"LP lower bound: {lb.energy_j / 3.6e6:.4f} kWh = {lb.j_per_token:.4f} J/generated token "
        f"({lb.j_per_unit:.4f} J/work unit); units by group: "
        + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in lb.units_by_group.items())
    )
    hdr = (
        f"{'policy':24s} {'kWh':>8s} {'J/token':>8s} {'xLP':>6s} {'in target':>9s} {'p99 s':>7s} "
        f"{'over cap s':>10s} {'resid.':>6s} {'USD':>6s} {'sim s':>6s}"
    )
    print(hdr)
    for p, r in cmp.results.items():
        print(
            f"{p:24s} {r.energy_kwh:8.4f} {r.j_per_token:8.4f} {cmp.ratio(p):6.3f} {r.attainment:9.4f} "
            f"{r.latency_p99_s:7.2f} {sum(r.cap_violation_s.values()):10.2f} {r.residency_violations:6d} "
            f"{r.cost_usd:6.3f} {r.sim_wall_s:6.2f}"
        )
    med, prop = cmp.results["medhub"], cmp.results["capacity-proportional"]
    saving = 1 - med.energy_j / prop.energy_j
    checks = {
        "medhub <= 1.15x LP bound": (cmp.ratio("medhub"), cmp.ratio("medhub") <= 1.15),
        ">= 99% within latency target": (med.attainment, med.attainment >= 0.99),
        "zero cap violations": (sum(med.cap_violation_s.values()), sum(med.cap_violation_s.values()) == 0),
        ">= 25% less energy than capacity-proportional": (saving, saving >= 0.25),
        "capacity-proportional vs LP (issue: ~1.56x)": (cmp.ratio("capacity-proportional"), True),
    }
    for k, (v, ok) in checks.items():
        print(f"  {goal(ok)}  {k}: {v:.4f}")
    if plot_dir:
        plot_power(
            {p: r.power_series for p, r in cmp.results.items()},
            {s.name: s.power_cap_w for s in fleet.sites},
            plot_dir / f"fleet-power-{name}.png",
        )
    return {
        "fleet": fleet.name,
        "workload": wl.description,
        "wall_s": wall,
        "lp_bound_kwh": lb.energy_j / 3.6e6,
        "lp_bound_j_per_token": lb.j_per_token,
        "policies": {p: {**r.summary(), "vs_lp_bound": cmp.ratio(p)} for p, r in cmp.results.items()},
        "checks": {k: {"value": v, "pass": ok} for k, (v, ok) in checks.items()},
    }


def training_part(limit: int, scale: float, plot_dir: Path | None):
    fleet = load_fleet(EX / "central.yaml")
    jobs = load_philly_jobs(
        resolve_trace("philly"), limit=limit, time_scale=scale, owners=[o.name for o in fleet.owners]
    )
    t0 = time.perf_counter()
    cmp = compare_training(fleet, jobs, horizon_over=["gavel", "gavel-lp", "medhub"])
    wall = time.perf_counter() - t0
    print(
        f"\n== training: {len(jobs)} Philly-derived jobs, arrivals x{scale:g} "
        f"(span {jobs[-1].arrival / 86400:.1f} d) "
        f"on {fleet.name}; energy to the latest makespan of gavel, gavel-lp and medhub "
        f"({cmp.horizon_s / 86400:.1f} d; fifo, finishing later, to its own)"
    )
    print(
        f"{'policy':8s} {'avg JCT h':>10s} {'p99 JCT h':>10s} {'makespan d':>10s} {'kWh':>9s} {'util':>6s} "
        f"{'preempt':>8s} {'sim s':>6s}"
    )
    for p, r in cmp.results.items():
        print(
            f"{p:8s} {r.avg_jct_s / 3600:10.2f} {r.p99_jct_s / 3600:10.1f} {r.makespan_s / 86400:10.2f} "
            f"{r.energy_kwh:9.1f} {r.utilization:6.3f} {r.preemptions:8d} {r.sim_wall_s:6.2f}"
        )
    R = cmp.results
    vs_fifo = 1 - R["medhub"].avg_jct_s / R["fifo"].avg_jct_s
    vs_gavel = R["medhub"].avg_jct_s / R["gavel"].avg_jct_s - 1
    vs_gavel_lp = R["medhub"].avg_jct_s / R["gavel-lp"].avg_jct_s - 1
    e_saving = 1 - R["medhub"].energy_kwh / R["gavel"].energy_kwh
    e_saving_lp = 1 - R["medhub"].energy_kwh / R["gavel-lp"].energy_kwh
    checks = {
        "avg JCT >= 30% better than FIFO": (vs_fifo, vs_fifo >= 0.30),
        "avg JCT within 10% of gavel (greedy LAS)": (vs_gavel, vs_gavel <= 0.10),
        "avg JCT within 10% of gavel-lp (max-min LP)": (vs_gavel_lp, vs_gavel_lp <= 0.10),
        ">= 10% less energy than gavel at equal completion time": (e_saving, e_saving >= 0.10),
        ">= 10% less energy than gavel-lp at equal completion time": (e_saving_lp, e_saving_lp >= 0.10),
        "gavel avg JCT vs FIFO (Gavel paper: LAS -35%)": (
            1 - R["gavel"].avg_jct_s / R["fifo"].avg_jct_s,
            True,
        ),
        "medhub cap violations": (
            sum(R["medhub"].cap_violation_s.values()),
            sum(R["medhub"].cap_violation_s.values()) == 0,
        ),
    }
    for k, (v, ok) in checks.items():
        print(f"  {goal(ok)}  {k}: {v:+.4f}")
    if plot_dir:
        plot_power(
            {p: r.power_series for p, r in R.items()},
            {s.name: s.power_cap_w for s in fleet.sites},
            plot_dir / "fleet-power-training.png",
            time_unit="d",
        )
    return {
        "jobs": len(jobs),
        "time_scale": scale,
        "wall_s": wall,
        "horizon_s": cmp.horizon_s,
        "policies": {p: r.summary() for p, r in R.items()},
        "checks": {k: {"value": v, "pass": ok} for k, (v, ok) in checks.items()},
    }


def speed_part(trace: RequestTrace, limit: int | None):
    from medhub.fleet.inference_policies import inference_policy
    from medhub.fleet.inference_sim import simulate_inference

    fleet = load_fleet(EX / "central.yaml")
    out = {}
    n = len(trace.arrival_s) if limit is None else limit
    span = trace.arrival_s[n - 1] + 1.0
    tiled = RequestTrace(
        np.concatenate([trace.arrival_s[:n], trace.arrival_s[:n] + span]),
        np.tile(trace.context_tokens[:n], 2),
        np.tile(trace.generated_tokens[:n], 2),
    )
    print("\n== speed (central fleet, 50x)")
    for label, tr in (("trace", trace), ("2x tiled", tiled)):
        wl = inference_workload(fleet, tr, scale=50, limit=n if label == "trace" else 2 * n)
        for p in ("capacity-proportional", "medhub"):
            t0 = time.perf_counter()
            simulate_inference(fleet, wl, inference_policy(p))
            wall = time.perf_counter() - t0
            print(
                f"  {len(wl):6d} requests ({label}), {p:22s}: {wall:6.2f} s  "
                f"({len(wl) / wall:,.0f} requests/s)  {goal(wall < 60 * max(1.0, len(wl) / 20_000))}"
            )
            out[f"{label}/{p}"] = {"requests": len(wl), "wall_s": wall}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (3,000 requests, 100 jobs)")
    ap.add_argument("--out", type=Path, help="write all results as JSON here")
    ap.add_argument("--plot-dir", type=Path, help="write power-over-time PNGs here")
    ap.add_argument("--jobs", type=int, default=None, help="training jobs (default 400, quick 100)")
    ap.add_argument(
        "--train-scale", type=float, default=0.1, help="training arrival-rate scale (default 0.1)"
    )
    args = ap.parse_args(argv)
    limit = 3000 if args.quick else None
    jobs = args.jobs or (100 if args.quick else 400)
    print(
        f"bench/fleet.py {'--quick ' if args.quick else ''}on {platform.machine()} {platform.system()}, "
        f"python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    t0 = time.perf_counter()
    trace = load_azure_trace(resolve_trace("azure-conv"))
    results = {
        "inference_central": inference_part("central", EX / "central.yaml", trace, limit, args.plot_dir),
        "inference_micro_dc": inference_part("micro-dc", EX / "micro-dc.yaml", trace, limit, args.plot_dir),
        "training": training_part(jobs, args.train_scale, args.plot_dir),
        "speed": speed_part(trace, limit),
    }
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")
    if args.out:
        args.out.write_text(
            json.dumps(results, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
