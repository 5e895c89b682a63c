"""Running every policy on one load, comparing them with the LP bound, and plotting power per site.

The CLI and the benchmark call these; they hold no policy logic of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medhub.fleet.bound import BoundError, LowerBound, energy_lower_bound
from medhub.fleet.inference_policies import INFERENCE_POLICIES, inference_policy
from medhub.fleet.inference_sim import InferenceResult, simulate_inference
from medhub.fleet.model import Fleet
from medhub.fleet.traces import InferenceWorkload, TrainingJob
from medhub.fleet.training_policies import TRAINING_POLICIES, training_policy
from medhub.fleet.training_sim import TrainingResult, simulate_training


@dataclass
class InferenceComparison:
    results: dict[str, InferenceResult]
    bound: LowerBound | None
    bound_error: str | None = None
    own_bounds: dict[str, float] = field(default_factory=dict)

    def ratio(self, policy: str) -> float:
        return self.results[policy].energy_j / self.bound.energy_j if self.bound else math.nan

    def rows(self) -> list[dict]:
        out = []
        for name, r in self.results.items():
            out.append(
                {
                    "policy": name,
                    "kWh": r.energy_kwh,
                    "J/token": r.j_per_token,
                    "x LP": self.ratio(name),
                    "in target": r.attainment,
                    "p99 s": r.latency_p99_s,
                    "makespan s": r.makespan_s,
                    "util": r.utilization,
                    "USD": r.cost_usd,
                    "over cap s": sum(r.cap_violation_s.values()),
                    "residency": r.residency_violations,
                    "sim s": r.sim_wall_s,
                }
            )
        return out


def compare_inference(
    fleet: Fleet, wl: InferenceWorkload, policies: list[str] | None = None, *, own_bounds: bool = False
) -> InferenceComparison:
    """Every inference policy on `wl`, and the LP bound (latency-target deadlines)."""
    results = {
        p: simulate_inference(fleet, wl, inference_policy(p)) for p in policies or list(INFERENCE_POLICIES)
    }
    try:
        bound, err = energy_lower_bound(fleet, wl), None
    except BoundError as exc:
        bound, err = None, str(exc)
    cmp = InferenceComparison(results, bound, err)
    if own_bounds:
        for p, r in results.items():
            cmp.own_bounds[p] = energy_lower_bound(fleet, wl, completion=r.completion).energy_j
    return cmp


@dataclass
class TrainingComparison:
    results: dict[str, TrainingResult]
    horizon_s: float

    def rows(self) -> list[dict]:
        return [
            {
                "policy": n,
                "avg JCT h": r.avg_jct_s / 3600,
                "p99 JCT h": r.p99_jct_s / 3600,
                "makespan h": r.makespan_s / 3600,
                "kWh": r.energy_kwh,
                "util": r.utilization,
                "USD": r.cost_usd,
                "over cap s": sum(r.cap_violation_s.values()),
                "preempt": r.preemptions,
                "sim s": r.sim_wall_s,
            }
            for n, r in self.results.items()
        ]


def compare_training(
    fleet: Fleet,
    jobs: list[TrainingJob],
    policies: list[str] | None = None,
    *,
    horizon_over: list[str] | None = None,
) -> TrainingComparison:
    """Every training policy on `jobs`; energy is measured up to the latest makespan among the policies
    in `horizon_over` (default: all), i.e. at equal completion time: a policy that finishes early still
    pays for what it leaves awake. A policy that finishes later than that is measured to its own end."""
    names = policies or list(TRAINING_POLICIES)
    first = {p: simulate_training(fleet, jobs, training_policy(p)) for p in names}
    horizon = max(first[p].makespan_s for p in (horizon_over or names))
    results = {p: simulate_training(fleet, jobs, training_policy(p), horizon=horizon) for p in names}
    return TrainingComparison(results, horizon)


def plot_power(
    series_by_policy: dict[str, dict[str, list[tuple[float, float]]]],
    caps: dict[str, float],
    path: Path,
    *,
    time_unit: str = "s",
) -> Path:
    """A PNG: facility power over time, one panel per site, one line per policy, the cap dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = list(caps)
    fig, axes = plt.subplots(len(sites), 1, figsize=(9, 3 * len(sites)), squeeze=False, sharex=True)
    div = {"s": 1.0, "h": 3600.0, "d": 86400.0}[time_unit]
    for ax, site in zip(axes[:, 0], sites, strict=True):
        for pol, series in series_by_policy.items():
            pts = series.get(site) or []
            if not pts:
                continue
            t = np.array([p[0] for p in pts]) / div
            w = np.array([p[1] for p in pts]) / 1000
            ax.step(t, w, where="post", label=pol, linewidth=0.8)
        ax.axhline(caps[site] / 1000, color="k", linestyle="--", linewidth=0.8, label="cap")
        ax.set_title(site)
        ax.set_ylabel("facility kW")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel(f"time ({time_unit})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
