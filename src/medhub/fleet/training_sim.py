"""A deterministic discrete-event simulator of training jobs on a fleet (heapq-based, round-based policies).

A job of type t that needs `scale` devices runs as a gang on one device group (one site, one device
type) at the group's steps/s for (t, scale) (profiles.train_steps_per_s). Events: job arrivals, job
completions, and, for round-based policies, a tick every `round_s`. At each event the policy returns the
jobs to run now and where (jobs it leaves out are preempted, keeping their progress), and how many
devices of each group to keep awake. A busy device draws `train_power_fraction` x its board power, an
awake idle one its idle power, a sleeping one its sleep power; site power = sum x PUE. Host power and
wake latency are not modelled for training (jobs run for minutes to days; a wake takes seconds).

Energy is integrated up to `horizon` (or the last completion, if later), so policies can be compared at
equal completion time: a policy that finishes early keeps paying for what it leaves awake.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from medhub.fleet.inference_sim import PolicyError
from medhub.fleet.model import Fleet
from medhub.fleet.profiles import train_steps_per_s
from medhub.fleet.traces import TrainingJob

_ARRIVE, _DONE, _TICK = 0, 1, 2


class TrainingPolicy(Protocol):
    name: str
    round_s: float | None

    def schedule(self, sim: TrainingSim, now: float) -> tuple[dict[int, int], list[int] | None]:
        """(job -> group for every job to run now, devices to keep awake per group or None for all)."""
        ...


@dataclass
class TrainingResult:
    policy: str
    fleet: str
    jobs: int
    avg_jct_s: float
    p50_jct_s: float
    p99_jct_s: float
    makespan_s: float
    horizon_s: float
    energy_kwh: float
    utilization: float
    cost_usd: float
    cap_violation_s: dict[str, float]
    preemptions: int
    device_s_by_owner: dict[str, float]
    sim_wall_s: float
    power_series: dict[str, list[tuple[float, float]]] = field(default_factory=dict, repr=False)

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "power_series"}


class TrainingSim:
    def __init__(self, fleet: Fleet, jobs: list[TrainingJob], policy: TrainingPolicy):
        self.fleet, self.jobs, self.policy = fleet, jobs, policy
        self.groups = fleet.groups()
        G = len(self.groups)
        self.count = np.array([len(idx) for _, _, idx in self.groups])
        self.g_site = np.array([s for s, _, _ in self.groups])
        prof = [fleet.devices[idx[0]].profile for _, _, idx in self.groups]
        pue = np.array([fleet.sites[s].pue for s in self.g_site])
        self.p_busy = np.array([p.peak_power_w * p.train_power_fraction for p in prof]) * pue
        self.p_idle = np.array([p.idle_power_w for p in prof]) * pue
        self.p_sleep = np.array([p.sleep_power_w for p in prof]) * pue
        self.cost_h = np.array([p.cost_per_hour for p in prof])
        self.cap = np.array([s.power_cap_w for s in fleet.sites])
        J = len(jobs)
        self.scale = np.array([j.scale for j in jobs])
        self.arrival = np.array([j.arrival for j in jobs])
        self.thr = np.zeros((J, G))
        cache: dict[tuple[str, int, int], float] = {}
        for i, j in enumerate(jobs):
            for g, (s, _, idx) in enumerate(self.groups):
                if j.scale > len(idx) or (j.residency and fleet.sites[s].name != j.residency):
                    continue
                key = (j.job_type, j.scale, g)
                if key not in cache:
                    cache[key] = train_steps_per_s(prof[g], j.job_type, j.scale)
                self.thr[i, g] = cache[key]
        unrunnable = [j for i, j in enumerate(jobs) if not self.thr[i].any()]
        if unrunnable:
            j = unrunnable[0]
            where = f", resident at {j.residency}" if j.residency else ""
            raise PolicyError(
                f"{len(unrunnable)} jobs fit no device group, e.g. job {j.job_id} "
                f"({j.job_type!r} on {j.scale} devices{where}): no group is large enough, "
                "or no throughput is known for that job type"
            )
        self.remaining = np.array([j.total_steps for j in jobs], dtype=float)
        self.attained = np.zeros(J)  # device-seconds received
        self.alloc = np.full(J, -1)
        self.arrived = np.zeros(J, dtype=bool)
        self.done = np.zeros(J, dtype=bool)
        self.t_done = np.zeros(J)
        self.awake = self.count.copy()
        self.now = 0.0
        self.energy_j = 0.0
        self.busy_ds = 0.0
        self.awake_cost = 0.0
        self.over_s = np.zeros(len(fleet.sites))
        self.preemptions = 0
        self.version = np.zeros(J, dtype=np.int64)
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.owner_ds: dict[str, float] = {}
        self.series: list[list[tuple[float, float]]] = [[] for _ in fleet.sites]

    def active(self) -> np.ndarray:
        """Ids of arrived, unfinished jobs (by arrival order)."""
        return np.flatnonzero(self.arrived & ~self.done)

    def busy(self) -> np.ndarray:
        """Devices busy per group."""
        out = np.zeros(len(self.groups), dtype=np.int64)
        run = self.alloc >= 0
        np.add.at(out, self.alloc[run], self.scale[run])
        return out

    def site_power(self, busy: np.ndarray, awake: np.ndarray) -> np.ndarray:
        per_group = busy * self.p_busy + (awake - busy) * self.p_idle + (self.count - awake) * self.p_sleep
        return np.bincount(self.g_site, weights=per_group, minlength=len(self.fleet.sites))

    def _push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, a, b))

    def _advance(self, t: float) -> None:
        dt = t - self.now
        if dt <= 0:
            return
        run = np.flatnonzero(self.alloc >= 0)
        if len(run):
            self.remaining[run] -= self.thr[run, self.alloc[run]] * dt
            self.attained[run] += self.scale[run] * dt
        busy = self.busy()
        sp = self.site_power(busy, self.awake)
        for k in range(len(sp)):
            ser = self.series[k]
            if not ser or ser[-1][1] != sp[k]:
                ser.append((self.now, float(sp[k])))
        self.energy_j += float(sp.sum()) * dt
        self.over_s += (sp > self.cap * (1 + 1e-9)) * dt
        self.busy_ds += float(busy.sum()) * dt
        self.awake_cost += float((self.awake * self.cost_h).sum()) * dt / 3600
        for i in run:
            o = self.jobs[i].owner
            self.owner_ds[o] = self.owner_ds.get(o, 0.0) + float(self.scale[i]) * dt
        self.now = t

    def _apply(self, plan: dict[int, int], awake: list[int] | None) -> None:
        new_alloc = np.full(len(self.jobs), -1)
        for j, g in plan.items():
            if self.done[j] or not self.arrived[j]:
                raise PolicyError(f"policy {self.policy.name} scheduled job {j}, which is not waiting")
            if self.thr[j, g] <= 0:
                raise PolicyError(
                    f"policy {self.policy.name} put job {j} on group {g}, which its residency or size forbids"
                )
            new_alloc[j] = g
        use = np.zeros(len(self.groups), dtype=np.int64)
        run = new_alloc >= 0
        np.add.at(use, new_alloc[run], self.scale[run])
        if (use > self.count).any():
            raise PolicyError(f"policy {self.policy.name} over-allocated a device group")
        aw = self.count.copy() if awake is None else np.maximum(np.asarray(awake), use)
        self.preemptions += int(((self.alloc >= 0) & (self.alloc != new_alloc)).sum())
        changed = np.flatnonzero(self.alloc != new_alloc)
        self.alloc = new_alloc
        self.awake = np.minimum(aw, self.count)
        for j in changed:
            self.version[j] += 1
            if self.alloc[j] >= 0:
                t = self.now + max(0.0, self.remaining[j]) / self.thr[j, self.alloc[j]]
                self._push(t, _DONE, int(j), int(self.version[j]))

    def run(self, horizon: float = 0.0, observer=None) -> None:
        """Simulate to the last completion (and on to `horizon`); `observer(sim, t)` sees every plan."""
        for i, a in enumerate(self.arrival):
            self._push(float(a), _ARRIVE, i, 0)
        rs = self.policy.round_s
        if rs:
            self._push(rs, _TICK, 0, 0)
        left = len(self.jobs)
        while left:
            if not self.events:
                raise PolicyError(f"policy {self.policy.name} stalled with {left} jobs unfinished")
            t, _, kind, a, b = heapq.heappop(self.events)
            if kind == _DONE and b != self.version[a]:
                continue
            self._advance(t)
            if kind == _ARRIVE:
                self.arrived[a] = True
            elif kind == _DONE:
                self.done[a] = True
                self.t_done[a] = t
                self.alloc[a] = -1
                self.remaining[a] = 0.0
                left -= 1
            else:
                if left:
                    self._push(t + rs, _TICK, 0, 0)
            # let same-time events land before deciding
            if self.events and self.events[0][0] <= t and self.events[0][2] != _TICK:
                continue
            if left:
                plan, awake = self.policy.schedule(self, t)
                self._apply(plan, awake)
                if observer is not None:
                    observer(self, t)
        if horizon > self.now:
            self._advance(horizon)


def simulate_training(
    fleet: Fleet, jobs: list[TrainingJob], policy: TrainingPolicy, *, horizon: float = 0.0
) -> TrainingResult:
    t0 = time.perf_counter()
    sim = TrainingSim(fleet, jobs, policy)
    sim.run(horizon)
    jct = sim.t_done - sim.arrival
    makespan = float(sim.t_done.max())
    return TrainingResult(
        policy=policy.name,
        fleet=fleet.name,
        jobs=len(jobs),
        avg_jct_s=float(jct.mean()),
        p50_jct_s=float(np.percentile(jct, 50)),
        p99_jct_s=float(np.percentile(jct, 99)),
        makespan_s=makespan,
        horizon_s=float(sim.now),
        energy_kwh=sim.energy_j / 3.6e6,
        utilization=sim.busy_ds / (float(sim.count.sum()) * makespan) if makespan else 0.0,
        cost_usd=sim.awake_cost,
        cap_violation_s={s.name: float(v) for s, v in zip(fleet.sites, sim.over_s, strict=True)},
        preemptions=sim.preemptions,
        device_s_by_owner={k: float(v) for k, v in sim.owner_ds.items()},
        sim_wall_s=time.perf_counter() - t0,
        power_series={
            s.name: ser + [(sim.now, ser[-1][1] if ser else 0.0)]
            for s, ser in zip(fleet.sites, sim.series, strict=True)
        },
    )
