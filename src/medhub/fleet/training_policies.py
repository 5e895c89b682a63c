"""Training scheduling policies behind one interface (`TrainingPolicy` in training_sim.py).

- `fifo`: first-fit FIFO, as Kubernetes' default scheduler places a gang (with a coscheduling plugin):
  jobs in arrival order, each on the first device group in fleet order with enough free devices; a job
  that does not fit waits while later ones are tried; no preemption; everything stays on.
  `fifo-strict`: the same, but the first job that does not fit blocks the rest (Gavel's FIFO baseline).
- `gavel`: Gavel-style heterogeneity-aware least-attained-service (LAS): every round (6 min), jobs in
  order of device-seconds received so far each take the free group where they run fastest; jobs can be
  preempted at round boundaries. Everything stays on. (A greedy stand-in for Gavel's LP.)
- `gavel-lp`: Gavel's heterogeneity-aware max-min fairness as an LP, realised with Gavel's round
  priorities (see GavelMaxMin).
- `medhub`: the same LAS order and rounds pick which jobs run; each job takes the free group with the
  least energy per step among those within `slowdown` of its fastest free group, only if its site stays
  under its power cap; then the chosen jobs are placed again, the job that loses most energy on its
  second-best group first (comparative advantage: a job ~equally efficient anywhere yields the
  efficient group to one that is not), kept if every job still fits; idle devices are put to sleep.
Owner quotas (`quota_devices`) are enforced by all three.
"""

from __future__ import annotations

import numpy as np

from medhub.fleet.training_sim import TrainingSim


def _quota(sim: TrainingSim) -> dict[str, int | None]:
    return {o.name: o.quota_devices for o in sim.fleet.owners}


class FIFO:
    """First-fit in arrival order. Like Kubernetes' default scheduler, a job that does not fit is set
    aside and later ones are tried (`strict=True`: it blocks them, as in Gavel's FIFO baseline)."""

    name = "fifo"
    round_s = None

    def __init__(self, strict: bool = False):
        self.strict = strict
        if strict:
            self.name = "fifo-strict"

    def schedule(self, sim: TrainingSim, now: float) -> tuple[dict[int, int], list[int] | None]:
        plan = {int(j): int(sim.alloc[j]) for j in np.flatnonzero(sim.alloc >= 0)}
        free = sim.count - sim.busy()
        quota = _quota(sim)
        used: dict[str, int] = {}
        for j in plan:
            o = sim.jobs[j].owner
            used[o] = used.get(o, 0) + int(sim.scale[j])
        for j in sim.active():
            if j in plan:
                continue
            o = sim.jobs[j].owner
            q = quota.get(o)
            if q is not None and used.get(o, 0) + sim.scale[j] > q:
                if self.strict:
                    break
                continue
            for g in range(len(sim.groups)):
                if sim.thr[j, g] > 0 and free[g] >= sim.scale[j]:
                    plan[int(j)] = g
                    free[g] -= sim.scale[j]
                    used[o] = used.get(o, 0) + int(sim.scale[j])
                    break
            else:
                if self.strict:
                    break
        return plan, None


class _LAS:
    round_s: float | None = 360.0
    energy_aware = False
    slowdown = 0.0
    move_gain = 0.0
    speed_weight = 0.0
    reassign = False

    def _choose(self, sim: TrainingSim, j: int, free: np.ndarray, power: np.ndarray) -> int | None:
        """The group for job j (a running job stays where it is if that is still a valid choice)."""
        ok = (sim.thr[j] > 0) & (free >= sim.scale[j])
        if not ok.any():
            return None
        cur = int(sim.alloc[j])
        if not self.energy_aware:
            best = int(np.argmax(np.where(ok, sim.thr[j], -1.0)))
            return cur if cur >= 0 and ok[cur] and sim.thr[j, cur] >= sim.thr[j, best] else best
        top = sim.thr[j][ok].max()
        cand = ok & (sim.thr[j] >= (1 - self.slowdown) * top)
        # the job's site must stay under its cap: busy minus sleep power for the gang
        extra = (sim.p_busy - sim.p_sleep) * sim.scale[j]
        cand &= power[sim.g_site] + extra <= sim.cap[sim.g_site]
        if not cand.any():
            return None
        e_step = np.where(cand, sim.p_busy * sim.scale[j] / np.maximum(sim.thr[j], 1e-12), np.inf)
        if self.speed_weight:  # trade energy against speed: energy per step x (top / steps/s)^weight
            e_step = e_step * (top / np.maximum(sim.thr[j], 1e-12)) ** self.speed_weight
        best = int(np.argmin(e_step))
        # stay put unless moving saves more than `move_gain` of the energy per step
        return cur if cur >= 0 and cand[cur] and e_step[cur] <= e_step[best] * (1 + self.move_gain) else best

    def schedule(self, sim: TrainingSim, now: float) -> tuple[dict[int, int], list[int] | None]:
        act = sim.active()
        order = act[np.lexsort((sim.arrival[act], sim.attained[act]))]
        free = sim.count.copy()
        plan: dict[int, int] = {}
        quota = _quota(sim)
        used: dict[str, int] = {}
        busy = np.zeros(len(sim.groups), dtype=np.int64)
        power = sim.site_power(busy, busy) if self.energy_aware else np.zeros(len(sim.fleet.sites))
        for j in order:
            o = sim.jobs[j].owner
            q = quota.get(o)
            if q is not None and used.get(o, 0) + sim.scale[j] > q:
                continue
            g = self._choose(sim, int(j), free, power)
            if g is None:
                continue
            plan[int(j)] = g
            free[g] -= sim.scale[j]
            busy[g] += sim.scale[j]
            used[o] = used.get(o, 0) + int(sim.scale[j])
            if self.energy_aware:
                power = sim.site_power(busy, busy)
        if self.energy_aware and self.reassign and plan:
            plan, busy = self._reassign(sim, plan, busy)
        return plan, (busy.tolist() if self.energy_aware else None)

    def _reassign(
        self, sim: TrainingSim, plan: dict[int, int], busy: np.ndarray
    ) -> tuple[dict[int, int], np.ndarray]:
        """The same jobs, placed again in order of how much energy they lose on their second-best
        group (the strongest preference chooses first); kept only if every job still gets a group."""
        ok_all = sim.thr[list(plan)] > 0
        e = np.where(ok_all, sim.p_busy / np.maximum(sim.thr[list(plan)], 1e-12), np.inf)
        srt = np.sort(e, axis=1)
        pref = np.where(np.isfinite(srt[:, 1]), srt[:, 1] / srt[:, 0], np.inf)
        order = [list(plan)[i] for i in np.argsort(-pref, kind="stable")]
        free = sim.count.copy()
        new_busy = np.zeros(len(sim.groups), dtype=np.int64)
        power = sim.site_power(new_busy, new_busy)
        out: dict[int, int] = {}
        for j in order:
            g = self._choose(sim, int(j), free, power)
            if g is None:
                return plan, busy
            out[int(j)] = g
            free[g] -= sim.scale[j]
            new_busy[g] += sim.scale[j]
            power = sim.site_power(new_busy, new_busy)
        return out, new_busy


class GavelLAS(_LAS):
    name = "gavel"


class EnergyAwareLAS(_LAS):
    name = "medhub"
    energy_aware = True

    def __init__(
        self,
        slowdown: float = 0.3,
        round_s: float = 360.0,
        move_gain: float = 0.1,
        speed_weight: float = 0.0,
        reassign: bool = True,
    ):
        self.slowdown, self.round_s, self.move_gain = slowdown, round_s, move_gain
        self.speed_weight, self.reassign = speed_weight, reassign


class GavelMaxMin:
    """Gavel's heterogeneity-aware max-min fairness, solved as an LP (scipy HiGHS) whenever the set of
    active jobs changes, then realised round by round with Gavel's priorities X[j, g] / share received.

    LP: maximise t subject to  sum_g thr[j, g] X[j, g] / thr_eq[j] >= t  for every active job j,
    sum_g X[j, g] <= 1, sum_j scale_j X[j, g] <= devices(g), X >= 0 (0 where j cannot run on g), where
    thr_eq[j] is j's throughput with an equal time share of every group. Each round, (job, group)
    pairs are taken in order of X[j, g] / (fraction of its time j has received on g); free devices left
    then go to waiting jobs on their fastest free group (work conserving). Everything stays on."""

    name = "gavel-lp"
    round_s: float | None = 360.0

    def __init__(self) -> None:
        self._key: tuple[int, ...] | None = None
        self._x: dict[tuple[int, int], float] = {}
        self._time_on: dict[tuple[int, int], float] = {}
        self._last = 0.0

    def _solve(self, sim: TrainingSim, act: np.ndarray) -> None:
        from scipy.optimize import linprog
        from scipy.sparse import lil_matrix

        J, G = len(act), len(sim.groups)
        thr = sim.thr[act]
        share = np.minimum(1.0, sim.count / max(1, int(sim.scale[act].sum()))) / G
        thr_eq = np.maximum((thr * share).sum(axis=1), 1e-12)
        n = J * G + 1
        c = np.zeros(n)
        c[-1] = -1.0
        a = lil_matrix((2 * J + G, n))
        b = np.zeros(2 * J + G)
        for i in range(J):
            for g in range(G):
                a[i, i * G + g] = -thr[i, g] / thr_eq[i]
                a[J + i, i * G + g] = 1.0
                a[2 * J + g, i * G + g] = sim.scale[act[i]]
            a[i, -1] = 1.0
            b[J + i] = 1.0
        b[2 * J :] = sim.count
        bounds = [(0, 1 if thr[i // G, i % G] > 0 else 0) for i in range(J * G)] + [(0, None)]
        res = linprog(c, A_ub=a.tocsr(), b_ub=b, bounds=bounds, method="highs")
        x = (
            res.x[:-1].reshape(J, G)
            if res.status == 0
            else (thr > 0) / np.maximum((thr > 0).sum(1), 1)[:, None]
        )
        self._x = {(int(act[i]), g): float(x[i, g]) for i in range(J) for g in range(G) if x[i, g] > 1e-6}

    def schedule(self, sim: TrainingSim, now: float) -> tuple[dict[int, int], list[int] | None]:
        dt = now - self._last
        for j in np.flatnonzero(sim.alloc >= 0):
            k = (int(j), int(sim.alloc[j]))
            self._time_on[k] = self._time_on.get(k, 0.0) + dt
        self._last = now
        act = sim.active()
        key = tuple(int(j) for j in act)
        if key != self._key:
            self._key = key
            if len(act):
                self._solve(sim, act)
        quota = _quota(sim)
        used: dict[str, int] = {}
        free = sim.count.copy()
        plan: dict[int, int] = {}
        prio = sorted(
            (
                (x / max(self._time_on.get((j, g), 0.0) / max(now - sim.arrival[j], 1.0), 1e-3), -j, g)
                for (j, g), x in self._x.items()
                if not sim.done[j]
            ),
            reverse=True,
        )

        def take(j: int, g: int) -> None:
            o = sim.jobs[j].owner
            q = quota.get(o)
            if j in plan or free[g] < sim.scale[j] or (q is not None and used.get(o, 0) + sim.scale[j] > q):
                return
            plan[j] = g
            free[g] -= sim.scale[j]
            used[o] = used.get(o, 0) + int(sim.scale[j])

        for _, negj, g in prio:
            take(-negj, g)
        for j in act:
            if int(j) not in plan:
                for g in np.argsort(-sim.thr[j], kind="stable"):
                    if sim.thr[j, g] > 0:
                        take(int(j), int(g))
                    if int(j) in plan:
                        break
        return plan, None


TRAINING_POLICIES = {
    "fifo": FIFO,
    "fifo-strict": lambda: FIFO(strict=True),
    "gavel": GavelLAS,
    "gavel-lp": GavelMaxMin,
    "medhub": EnergyAwareLAS,
}


def training_policy(name: str):
    try:
        return TRAINING_POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown training policy {name!r} (known: {sorted(TRAINING_POLICIES)})") from None
