"""The linear-programming lower bound on inference energy for a workload on a fleet (scipy HiGHS).

Time is cut into windows of `window_s`. Variables y[k, g, w] >= 0: units of work of key k served by
device group g (one site, one device type) in window w. A key is (residency, class, rate bin): requests
are binned by the rate they need, rho_r = units_r / D_r, where D_r is their latency target (or their
actual latency, if later and given).

Why it is a bound. Split every device's power, at every instant, into its sleep power (which it draws
in every state: asleep, waking, idle, busy) and the rest; with n >= 1 requests in flight, charge the
rest, P(U(n)) - P_sleep, plus 1/m of its node's host power (m devices per node: the host is on whenever
any of them is, so the charges never exceed the host's energy), to the n requests equally, f(n) watts
each (times PUE). Every joule charged is a joule the simulator counts, so

    energy >= sum_devices P_sleep * PUE * makespan + sum_requests (energy charged to the request).

A request in flight with n companions gets rate rho(n) = T_sat U(n) / n (processor sharing) and is
charged f(n); while it waits it gets and is charged 0. Under deadline-ordered batching
(inference_sim.InferenceSim.set_deadline_batching) a held request is waiting in this sense (no service,
no charge) and the running batch of n shares the device exactly as above, so the argument is unchanged:
it never assumed an order among requests, only that the n running share the device equally. A request
must receive units_r within D_r, so its charge is at least D_r h(units_r / D_r), where h is the lower
convex envelope of (0, 0) and the points (rho(n), f(n)), n = 1..max_batch (beyond max_batch the points
lie on the segment from (0, 0) through n = max_batch): per unit, h(rho)/rho, which is the full-load cost
(P_peak - P_sleep + host share) * PUE / T_sat while rho <= rho(max_batch), and grows above it (a request
that needs more than a full device's per-request rate must run part-loaded, where concave power costs
more per unit). h(rho)/rho is non-decreasing, so each bin is priced at its lower edge; a bin whose lower
edge exceeds rho(1) (the fastest a device of the group can serve one request) is not allowed on the
group at all. The makespan is at least the last arrival plus that request's fastest possible service.

Constraints (each holds for every schedule that meets the deadlines, per key):

- capacity: sum_k y[k, g, w] / T_sat[k, g] <= devices(g) * window_s (a device delivers at most T_sat)
- causality: work served by the end of window w <= work arrived by the end of window w
- deadlines: work served by the end of window w >= work due by the end of window w
- everything is served; key k only on groups its residency, class and rate allow.

Power caps are deliberately left out, so the bound also holds for policies that break them. With
`completion` (a policy's own completion times), that policy's schedule is feasible for the LP and its
requests' rates are what it actually achieved, so the bound can never exceed its energy; without it, it
bounds every schedule that meets every latency target. tests/test_fleet.py checks both on random
instances and random (seeded) policies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from medhub.fleet.model import Fleet
from medhub.fleet.profiles import throughput_curve
from medhub.fleet.traces import InferenceWorkload

RATE_BIN_RATIO = 1.1  # geometric width of the rate bins above the lowest full-load per-request rate


def request_points(
    profile, workload_class: str, host_share_w: float, pue: float
) -> tuple[np.ndarray, np.ndarray]:
    """(rho(n), f(n)) for n = 1..max_batch: per-request rate (units/s) and facility watts charged to each
    of n requests in flight (power above sleep plus the host share, shared equally), as the simulator
    models a device of this profile."""
    b = max(1, profile.max_batch)
    u = np.asarray(throughput_curve(profile, b)[1:])
    n = np.arange(1, b + 1, dtype=float)
    tsat = profile.throughput.get(workload_class, 0.0)
    sleep = min(profile.sleep_power_w, profile.idle_power_w)
    power = profile.idle_power_w + (profile.peak_power_w - profile.idle_power_w) * u**profile.power_exponent
    return tsat * u / n, (power - sleep + host_share_w) * pue / n


def cost_per_unit(rho_pts: np.ndarray, f_pts: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """h(rho)/rho: the least facility joules per unit for a request that needs rate rho, where h is the
    lower convex envelope of (0, 0) and the points; inf above the fastest point."""
    x = np.concatenate([[0.0], rho_pts])
    y = np.concatenate([[0.0], f_pts])
    rho = np.asarray(rho, dtype=float)
    out = np.full(rho.shape, np.inf)
    for i, r in np.ndenumerate(rho):
        if r > x.max() * (1 + 1e-12):
            continue
        if r <= 0:
            out[i] = float((y[1:] / x[1:]).min())
            continue
        lo, hi = x <= r, x >= r
        xl, yl = x[lo][:, None], y[lo][:, None]
        xh, yh = x[hi][None, :], y[hi][None, :]
        span = xh - xl
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(span > 0, (r - xl) / np.where(span > 0, span, 1.0), 0.0)
        h = yl + t * (yh - yl)
        out[i] = float(h.min()) / r
    return out


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
    groups = fleet.groups()
    G = len(groups)
    node_devs: dict[int, int] = {}
    for d in fleet.devices:
        node_devs[d.node] = node_devs.get(d.node, 0) + 1
    g_count = np.array([len(idx) for _, _, idx in groups], dtype=float)
    g_host = [
        min(fleet.nodes[fleet.devices[i].node].host_power_w / node_devs[fleet.devices[i].node] for i in idx)
        for _, _, idx in groups
    ]
    g_prof = [fleet.devices[idx[0]].profile for _, _, idx in groups]
    g_pue = [fleet.sites[s].pue for s, _, _ in groups]
    tsat = np.array([[g_prof[g].throughput.get(c, 0.0) for g in range(G)] for c in classes])
    # per class and group: the request points (rate, charged watts)
    pts = {
        (ci, g): request_points(g_prof[g], c, g_host[g], g_pue[g])
        for ci, c in enumerate(classes)
        for g in range(G)
        if tsat[ci, g] > 0
    }

    arrival = wl.arrival
    due = arrival + wl.target
    if completion is not None:
        due = np.maximum(due, completion)
    req_class = np.array([classes.index(s.workload_class) for s in fleet.streams])[wl.stream]
    rate = wl.units / np.maximum(due - arrival, 1e-12)
    # rate bins per class: edges at each group's full-load per-request rate, then geometric
    rate_bin = np.zeros(len(wl), dtype=int)
    bin_lo: dict[tuple[int, int], float] = {}
    for ci in range(len(classes)):
        if not any((ci, g) in pts for g in range(G)):
            bin_lo[ci, 0] = 0.0
            continue
        full = sorted({float(pts[ci, g][0][-1]) for g in range(G) if (ci, g) in pts})
        fastest = max(float(pts[ci, g][0][0]) for g in range(G) if (ci, g) in pts)
        edges = [0.0, *full]
        while edges[-1] * RATE_BIN_RATIO < fastest:
            edges.append(edges[-1] * RATE_BIN_RATIO)
        edges.append(fastest)
        edges = sorted(set(edges))
        m = req_class == ci
        rate_bin[m] = np.searchsorted(edges, rate[m], side="right") - 1
        for b, lo in enumerate(edges):
            bin_lo[ci, b] = lo
    stream_res = [s.residency for s in fleet.streams]
    req_key_raw = [(stream_res[st], req_class[i], rate_bin[i]) for i, st in enumerate(wl.stream)]
    keys = sorted(set(req_key_raw), key=str)
    kindex = {k: i for i, k in enumerate(keys)}
    kreq = np.array([kindex[k] for k in req_key_raw], dtype=int)

    # makespan >= the last arrival plus its fastest service; every device draws >= sleep power until then
    last = int(np.argmax(arrival)) if len(wl) else 0
    fastest_last = max(
        (float(pts[req_class[last], g][0][0]) for g in range(G) if (req_class[last], g) in pts), default=0.0
    )
    t_min = (
        float(arrival[last] + (wl.units[last] / fastest_last if fastest_last else 0.0)) if len(wl) else 0.0
    )
    sleep_w = sum(
        min(d.profile.sleep_power_w, d.profile.idle_power_w) * fleet.sites[d.site].pue for d in fleet.devices
    )
    floor_j = t_min * sleep_w

    nw = int(np.floor(due.max() / window_s)) + 1
    a_win = np.minimum((arrival // window_s).astype(int), nw - 1)
    d_win = np.minimum((due // window_s).astype(int), nw - 1)
    K = len(keys)
    cum_arr = np.zeros((K, nw))
    cum_due = np.zeros((K, nw))
    for k in range(K):
        m = kreq == k
        cum_arr[k] = np.cumsum(np.bincount(a_win[m], weights=wl.units[m], minlength=nw))
        # a request due inside window w may be served up to its deadline, so it counts as due at the
        # end of window w (a relaxation)
        cum_due[k] = np.cumsum(np.bincount(d_win[m], weights=wl.units[m], minlength=nw))

    unit_cost = np.full((K, G), np.inf)
    for k, (_, ci, b) in enumerate(keys):
        for g in range(G):
            if (ci, g) in pts:
                unit_cost[k, g] = cost_per_unit(*pts[ci, g], np.array([bin_lo[ci, b]]))[0]

    allowed = np.zeros((K, G), dtype=bool)
    for k, (res, ci, _) in enumerate(keys):
        for g, (s, _, _) in enumerate(groups):
            allowed[k, g] = (
                tsat[ci, g] > 0
                and np.isfinite(unit_cost[k, g])
                and (res is None or fleet.sites[s].name == res)
            )
    pairs = [(k, g) for k in range(K) for g in range(G) if allowed[k, g]]
    missing = [keys[k] for k in range(K) if not allowed[k].any()]
    if missing:
        raise BoundError(f"no device can serve {missing} on fleet {fleet.name}")
    P = len(pairs)
    # z[w], w = 1..nw-1: "the makespan reaches w * window_s" (1 in any real schedule that serves work in
    # window w or later); each costs the sleep floor over the part of [(w-1), w) * window_s after t_min
    nz = nw - 1
    nvar = P * nw + nz
    z_len = np.clip(np.arange(1, nw) * window_s - t_min, 0.0, window_s)

    def var(p: int, w: int) -> int:
        return p * nw + w

    cost = np.empty(nvar)
    for p, (k, g) in enumerate(pairs):
        cost[p * nw : (p + 1) * nw] = unit_cost[k, g]
    cost[P * nw :] = sleep_w * z_len

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
                vals.append(1.0 / tsat[keys[k][1], g])
            b_ub.append(g_count[g] * window_s)
            r += 1
            if w >= 1:  # load / capacity of the group in window w <= z[w]
                for p in ps:
                    rows.append(r)
                    cols.append(var(p, w))
                    vals.append(1.0 / tsat[keys[pairs[p][0]][1], g] / (g_count[g] * window_s))
                rows.append(r)
                cols.append(P * nw + w - 1)
                vals.append(-1.0)
                b_ub.append(0.0)
                r += 1
    for w in range(1, nz):  # z is non-increasing: z[w + 1] <= z[w]
        rows += [r, r]
        cols += [P * nw + w, P * nw + w - 1]
        vals += [1.0, -1.0]
        b_ub.append(0.0)
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
    y = res.x[: P * nw].reshape(P, nw).sum(axis=1)
    by_group: dict[str, float] = {}
    for p, (_, g) in enumerate(pairs):
        name = f"{fleet.sites[groups[g][0]].name}/{groups[g][1]}"
        by_group[name] = by_group.get(name, 0.0) + float(y[p])
    tokens = float(wl.out_tokens.sum())
    energy = float(res.fun) + floor_j
    return LowerBound(
        energy_j=energy,
        j_per_token=energy / tokens if tokens else float("nan"),
        j_per_unit=energy / float(wl.units.sum()),
        windows=nw,
        status=res.message,
        units_by_group=by_group,
    )
