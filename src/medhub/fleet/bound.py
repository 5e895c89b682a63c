"""The linear-programming lower bound on inference energy for a workload on a fleet (scipy HiGHS).

Time is cut into windows of `window_s`. Variables y[k, g, w] >= 0: units of work of residency/class key
k served by device group g (one site, one device type) in window w. Costs: facility joules per unit at
full load, P_peak * PUE / T_sat (plus each device's share of its node's host power): because power is
concave in load with P(0) >= 0, P(U) >= U * P_peak, so no schedule spends less per unit. (A measured
profile with a convex curve, exponent > 1, gets min_U P(U)/U instead, so the bound stays a bound.)
Constraints:

- capacity: sum_k y[k, g, w] / T_sat[k, g] <= devices(g) * window_s       (U <= 1)
- causality: work served by the end of window w <= work arrived by the end of window w, per key
- deadlines: work served by the end of window w >= work due by the start of window w+1, per key,
  where a request is due at arrival + latency target (or at its actual completion, if later and given)
- everything is served; key k only on groups its residency and class allow.

Power caps are deliberately left out, so the bound also holds for policies that break them. With
`completion` (a policy's own completion times), that policy's schedule is feasible for the LP, so the
bound can never exceed its energy; without it, it bounds every schedule that meets every latency target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from medhub.fleet.model import Fleet
from medhub.fleet.traces import InferenceWorkload


def least_power_per_utilization(profile) -> float:
    """min over U in (0, 1] of P(U) / U: P_peak when power is concave (exponent <= 1), less otherwise."""
    if profile.power_exponent <= 1.0:
        return profile.peak_power_w
    u = np.linspace(1e-3, 1.0, 4000)
    p = profile.idle_power_w + (profile.peak_power_w - profile.idle_power_w) * u**profile.power_exponent
    return float((p / u).min())


class BoundError(RuntimeError):
    """The LP could not be solved (e.g. the load cannot be served by its deadlines on this fleet)."""


@dataclass(frozen=True)
class LowerBound:
    energy_j: float
    j_per_token: float
    j_per_unit: float
    windows: int
    status: str
    units_by_group: dict[str, float]


def energy_lower_bound(
    fleet: Fleet,
    wl: InferenceWorkload,
    *,
    window_s: float = 1.0,
    completion: np.ndarray | None = None,
) -> LowerBound:
    classes = sorted({s.workload_class for s in fleet.streams})
    keys = sorted({(s.residency, s.workload_class) for s in fleet.streams}, key=str)
    key_of_stream = np.array([keys.index((s.residency, s.workload_class)) for s in fleet.streams])
    groups = fleet.groups()
    node_devs: dict[int, int] = {}
    for d in fleet.devices:
        node_devs[d.node] = node_devs.get(d.node, 0) + 1
    g_count = np.array([len(idx) for _, _, idx in groups], dtype=float)
    # per group: facility joules per device-second at full load (device + host share)
    g_full_w = []
    for s, _, idx in groups:
        pue = fleet.sites[s].pue
        host = min(
            fleet.nodes[fleet.devices[i].node].host_power_w / node_devs[fleet.devices[i].node] for i in idx
        )
        g_full_w.append((least_power_per_utilization(fleet.devices[idx[0]].profile) + host) * pue)
    tsat = np.array(
        [[fleet.devices[idx[0]].profile.throughput.get(c, 0.0) for _, _, idx in groups] for c in classes]
    )

    arrival = wl.arrival
    due = arrival + wl.target
    if completion is not None:
        due = np.maximum(due, completion)
    nw = int(np.floor(due.max() / window_s)) + 1
    kreq = key_of_stream[wl.stream]
    a_win = np.minimum((arrival // window_s).astype(int), nw - 1)
    d_win = np.minimum((due // window_s).astype(int), nw - 1)
    K, G = len(keys), len(groups)
    cum_arr = np.zeros((K, nw))
    cum_due = np.zeros((K, nw))
    for k in range(K):
        m = kreq == k
        cum_arr[k] = np.cumsum(np.bincount(a_win[m], weights=wl.units[m], minlength=nw))
        # due by the start of window w+1 means d_win <= w - 1 ... a request due inside window w may be
        # served up to its deadline, so count it as due at the end of window w (a relaxation).
        cum_due[k] = np.cumsum(np.bincount(d_win[m], weights=wl.units[m], minlength=nw))

    allowed = np.zeros((K, G), dtype=bool)
    for k, (res, c) in enumerate(keys):
        ci = classes.index(c)
        for g, (s, _, _) in enumerate(groups):
            allowed[k, g] = tsat[ci, g] > 0 and (res is None or fleet.sites[s].name == res)
    pairs = [(k, g) for k in range(K) for g in range(G) if allowed[k, g]]
    missing = [keys[k] for k in range(K) if not allowed[k].any()]
    if missing:
        raise BoundError(f"no device can serve {missing} on fleet {fleet.name}")
    P = len(pairs)
    nvar = P * nw

    def var(p: int, w: int) -> int:
        return p * nw + w

    cost = np.empty(nvar)
    for p, (k, g) in enumerate(pairs):
        cost[p * nw : (p + 1) * nw] = g_full_w[g] / tsat[classes.index(keys[k][1]), g]

    rows, cols, vals, b_ub = [], [], [], []
    r = 0
    # capacity
    for g in range(G):
        ps = [p for p, (k, gg) in enumerate(pairs) if gg == g]
        for w in range(nw):
            for p in ps:
                k = pairs[p][0]
                rows.append(r)
                cols.append(var(p, w))
                vals.append(1.0 / tsat[classes.index(keys[k][1]), g])
            b_ub.append(g_count[g] * window_s)
            r += 1
    # causality (<= arrived) and deadlines (-served <= -due), cumulative per key
    wgrid = np.arange(nw)
    for k in range(K):
        ps = [p for p, (kk, _) in enumerate(pairs) if kk == k]
        for sign, bound in ((1.0, cum_arr[k]), (-1.0, -cum_due[k])):
            for w in range(nw):
                for p in ps:
                    idx = var(p, 0) + wgrid[: w + 1]
                    rows.extend([r] * len(idx))
                    cols.extend(idx.tolist())
                    vals.extend([sign] * len(idx))
                b_ub.append(bound[w])
                r += 1
    a_ub = coo_matrix((vals, (rows, cols)), shape=(r, nvar)).tocsr()
    a_eq_rows, a_eq_cols = [], []
    for k in range(K):
        for p, (kk, _) in enumerate(pairs):
            if kk == k:
                a_eq_rows += [k] * nw
                a_eq_cols += list(range(var(p, 0), var(p, 0) + nw))
    a_eq = coo_matrix((np.ones(len(a_eq_rows)), (a_eq_rows, a_eq_cols)), shape=(K, nvar)).tocsr()
    b_eq = cum_arr[:, -1]
    # tolerance: a hair of slack on the deadline rows keeps HiGHS from calling rounding infeasible
    b_ub = np.asarray(b_ub) + 1e-6
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:
        raise BoundError(f"LP bound for {wl.description} on {fleet.name}: {res.message}")
    y = res.x.reshape(P, nw).sum(axis=1)
    by_group: dict[str, float] = {}
    for p, (_, g) in enumerate(pairs):
        name = f"{fleet.sites[groups[g][0]].name}/{groups[g][1]}"
        by_group[name] = by_group.get(name, 0.0) + float(y[p])
    tokens = float(wl.out_tokens.sum())
    return LowerBound(
        energy_j=float(res.fun),
        j_per_token=float(res.fun) / tokens if tokens else float("nan"),
        j_per_unit=float(res.fun) / float(wl.units.sum()),
        windows=nw,
        status=res.message,
        units_by_group=by_group,
    )
