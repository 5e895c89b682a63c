"""A deterministic discrete-event simulator of online inference on a fleet (heapq-based).

Each awake device serves its requests by processor sharing with continuous batching: with n requests
in flight it delivers U(n) of its saturation throughput (profiles.throughput_curve), shared equally, and
draws P_idle + (P_peak - P_idle) * U(n) ** power_exponent. Work is measured per device in
device-seconds at saturation (units / T_sat), so one virtual clock per device gives every completion
in O(log n).

A policy may instead have a site's devices batch deadline-ordered (`set_deadline_batching`), as
serving engines with priority scheduling and a max batch do: a device then runs at most max_batch of
its admitted requests, protected ones (admitted with a share they must get) first and the rest earliest
deadline first, sized so every protected request keeps its share; the others are held, with no service,
until they fit (`_rebatch`). The running batch shares the device exactly as above (same throughput
curve, same power), so only the order changes. Held requests keep their KV state, as requests beyond
max_batch already do under processor sharing (memory is not modelled).

Devices are asleep (sleep power), waking (idle power for `wake_s`) or awake. A node draws its host power
while any of its devices is awake or waking. Site power = (devices + hosts) * PUE, integrated exactly
between events; time above each site's cap is measured.

A policy (see `policies.py`) decides where each request goes (`route`), or that it waits in its
residency group's FIFO queue, and may change power states (`control`, called every `control_interval_s`).
The simulator refuses a placement that breaks data residency (PolicyError).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from medhub.fleet.model import Fleet
from medhub.fleet.profiles import throughput_curve
from medhub.fleet.traces import InferenceWorkload

SLEEP, WAKING, AWAKE = 0, 1, 2
_COMPLETE, _WAKE, _CONTROL = 0, 1, 2
N_CURVE = 1024  # the longest concurrency a device's curve is tabulated for


class PolicyError(RuntimeError):
    """A policy asked for something the fleet forbids (e.g. a placement that breaks residency)."""


class InferencePolicy(Protocol):
    name: str
    control_interval_s: float | None

    def start(self, sim: InferenceSim) -> None: ...

    def route(self, sim: InferenceSim, r: int) -> tuple[int, float] | None:
        """(device, share promised to r) to admit r now, or None to queue it."""
        ...

    def control(self, sim: InferenceSim, now: float) -> None: ...


@dataclass
class InferenceResult:
    policy: str
    fleet: str
    workload: str
    requests: int
    energy_j: float
    energy_kwh: float
    j_per_token: float
    j_per_unit: float
    j_per_image: float  # only when every stream serves images (energy cannot be split across classes)
    attainment: float
    latency_p50_s: float
    latency_p99_s: float
    makespan_s: float
    utilization: float
    cost_usd: float
    cap_violation_s: dict[str, float]
    max_over_cap_w: dict[str, float]
    site_energy_kwh: dict[str, float]
    residency_violations: int
    tokens_by_owner: dict[str, int]
    sim_wall_s: float
    power_series: dict[str, list[tuple[float, float]]] = field(default_factory=dict, repr=False)
    device_of_request: np.ndarray | None = field(default=None, repr=False)
    completion: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """The scalar metrics (JSON-ready)."""
        return {
            k: v
            for k, v in self.__dict__.items()
            if k not in ("power_series", "device_of_request", "completion")
        }


class InferenceSim:
    """Mutable state of one run. Policies read it and call `wake`, `sleep`, `drain`."""

    def __init__(self, fleet: Fleet, wl: InferenceWorkload, policy: InferencePolicy):
        self.fleet, self.wl, self.policy = fleet, wl, policy
        nd = len(fleet.devices)
        self.classes = sorted({s.workload_class for s in fleet.streams})
        self.stream_class = [self.classes.index(s.workload_class) for s in fleet.streams]
        self.stream_site = [fleet.site_index(s.residency) if s.residency else -1 for s in fleet.streams]
        self.site = [d.site for d in fleet.devices]
        self.node = [d.node for d in fleet.devices]
        self.pue = [fleet.sites[s].pue for s in self.site]
        self.cap = [s.power_cap_w for s in fleet.sites]
        prof = [d.profile for d in fleet.devices]
        self.idle = [p.idle_power_w for p in prof]
        self.peak = [p.peak_power_w for p in prof]
        self.sleep_w = [p.sleep_power_w for p in prof]
        self.wake_s = [p.wake_s for p in prof]
        self.max_batch = [p.max_batch for p in prof]
        self.cost_h = [p.cost_per_hour for p in prof]
        # saturation throughput per class (0 = cannot serve the class)
        self.tsat = [[p.throughput.get(c, 0.0) for p in prof] for c in self.classes]
        curves: dict[int, list[float]] = {}
        self.U = [curves.setdefault(p.max_batch, throughput_curve(p, N_CURVE)) for p in prof]
        self.share = [[0.0] + [u[n] / n for n in range(1, N_CURVE + 1)] for u in self.U]
        self.PW = [
            [self.idle[d] + (self.peak[d] - self.idle[d]) * u ** prof[d].power_exponent for u in self.U[d]]
            for d in range(nd)
        ]
        # facility joules per unit of work at full load, per class (policies rank devices by it)
        self.full_j = [
            [self.peak[d] * self.pue[d] / t[d] if t[d] else float("inf") for d in range(nd)]
            for t in self.tsat
        ]
        # dynamic state
        self.state = [AWAKE] * nd
        self.draining = [False] * nd
        self.n = [0] * nd
        self.V = [0.0] * nd
        self.t_dev = [0.0] * nd
        self.finish: list[list[tuple[float, int]]] = [[] for _ in range(nd)]
        self.need: list[list[tuple[float, int]]] = [[] for _ in range(nd)]  # max-heap of (-share, r)
        self.version = [0] * nd
        self.power = [0.0] * nd
        self.node_awake = [0] * len(fleet.nodes)
        self.site_power = [0.0] * len(fleet.sites)
        self.t_site = [0.0] * len(fleet.sites)
        self.site_energy = [0.0] * len(fleet.sites)
        self.over_s = [0.0] * len(fleet.sites)
        self.over_w = [0.0] * len(fleet.sites)
        self.series: list[list[tuple[float, float]]] = [[(0.0, 0.0)] for _ in fleet.sites]
        self.busy_int = [0.0] * nd
        self.awake_int = [0.0] * nd
        self.idle_since = [0.0] * nd
        n = len(wl)
        self.dev_of = np.full(n, -1, dtype=np.int64)
        self.t_admit = np.zeros(n)
        self.t_done = np.zeros(n)
        self.fin_v = [0.0] * n  # the device clock value at which each running request completes
        self.edf_dev = [False] * nd  # deadline-ordered batching per device (set_deadline_batching)
        self.edf = False
        self.batch_margin = float(getattr(policy, "batch_margin", 1.0))
        self.held: list[dict[int, float]] = [{} for _ in range(nd)]  # edf: admitted, not running
        self.prot: list[dict[int, float]] = [{} for _ in range(nd)]  # edf: protected request -> need
        self._deadline = (wl.arrival + wl.target).tolist()
        self.active_req: list[set[int]] = [set() for _ in range(nd)]
        self.queues: dict[int, list[int]] = {}
        self.qhead: dict[int, int] = {}
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.now = 0.0
        self.next_arrival = 0
        for d in range(nd):
            self.node_awake[self.node[d]] += 1
        for d in range(nd):
            self.power[d] = self.idle[d]
            self.site_power[self.site[d]] += self.idle[d] * self.pue[d]
        for i, nd_ in enumerate(fleet.nodes):
            if self.node_awake[i]:
                self.site_power[nd_.site] += nd_.host_power_w * fleet.sites[nd_.site].pue
        for s in range(len(fleet.sites)):
            self.series[s] = [(0.0, self.site_power[s])]

    # ---- bookkeeping -------------------------------------------------------------------------
    def _push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, a, b))

    def _site_change(self, s: int, delta_w: float) -> None:
        now = self.now
        dt = now - self.t_site[s]
        p = self.site_power[s]
        if dt > 0:
            self.site_energy[s] += p * dt
            if p > self.cap[s] * (1 + 1e-9):
                self.over_s[s] += dt
        self.t_site[s] = now
        p += delta_w
        self.site_power[s] = p
        if p - self.cap[s] > self.over_w[s]:
            self.over_w[s] = p - self.cap[s]
        ser = self.series[s]
        if ser[-1][0] == now:
            ser[-1] = (now, p)
        else:
            ser.append((now, p))

    def _advance(self, d: int) -> None:
        dt = self.now - self.t_dev[d]
        if dt > 0:
            n = self.n[d]
            if n:
                self.V[d] += self.share[d][min(n, N_CURVE)] * dt
                self.busy_int[d] += self.U[d][min(n, N_CURVE)] * dt
            if self.state[d] != SLEEP:
                self.awake_int[d] += dt
        self.t_dev[d] = self.now

    def _device_power(self, d: int) -> float:
        st = self.state[d]
        if st == SLEEP:
            return self.sleep_w[d]
        if st == WAKING:
            return self.idle[d]
        return self.PW[d][min(self.n[d], N_CURVE)]

    def _repower(self, d: int) -> None:
        p = self._device_power(d)
        if p != self.power[d]:
            self._site_change(self.site[d], (p - self.power[d]) * self.pue[d])
            self.power[d] = p

    def _clock_now(self, d: int) -> float:
        """d's virtual clock now (device-seconds served so far), without advancing it."""
        return self.V[d] + self.share[d][min(self.n[d], N_CURVE)] * (self.now - self.t_dev[d])

    def _reschedule(self, d: int) -> None:
        self.version[d] += 1
        fh = self.finish[d]
        if fh and self.state[d] == AWAKE:
            rate = self.share[d][min(self.n[d], N_CURVE)]
            t = self.now + max(0.0, fh[0][0] - self.V[d]) / rate
            self._push(t, _COMPLETE, d, self.version[d])

    # ---- what policies may ask -----------------------------------------------------------------
    def work(self, r: int, d: int) -> float:
        """Device-seconds at saturation that request r needs on device d (inf if d cannot serve it)."""
        t = self.tsat[self.stream_class[self.wl.stream[r]]][d]
        return self.wl.units[r] / t if t else float("inf")

    def allowed(self, r: int, d: int) -> bool:
        s = self.stream_site[self.wl.stream[r]]
        return (s < 0 or self.site[d] == s) and self.tsat[self.stream_class[self.wl.stream[r]]][d] > 0

    def refresh_needs(self, d: int, margin: float) -> float:
        """Recompute the share each protected request in flight on d still needs (remaining work over the
        time left to its deadline, times `margin`; dropped once past its deadline) and return the
        largest. A request served at least at its need only needs less later, so between refreshes the
        recorded needs stay upper bounds."""
        v = self._clock_now(d)
        now, fin, dl, act = self.now, self.fin_v, self._deadline, self.active_req[d]
        fresh = []
        for _, r in self.need[d]:
            if r in act and dl[r] > now:
                fresh.append((-(fin[r] - v) * margin / (dl[r] - now), r))
        heapq.heapify(fresh)
        self.need[d] = fresh
        return -fresh[0][0] if fresh else 0.0

    def set_deadline_batching(self, sites: set[int]) -> None:
        """Devices at `sites` batch deadline-ordered (`_rebatch`) instead of sharing themselves among
        every admitted request; call from the policy's `start`, before any admission."""
        self.edf_dev = [self.site[d] in sites for d in range(len(self.site))]
        self.edf = any(self.edf_dev)

    def set_discipline(self, d: int, deadline: bool) -> None:
        """Switch d between processor sharing and deadline-ordered batching, carrying what it has
        admitted over: held requests join the shared pool (protections become recorded needs), or every
        request goes through `_rebatch` (a recorded need that a full batch is too slow for becomes a
        protection, as `EnergyAware` admits). Work done so far is kept exactly."""
        if self.edf_dev[d] == deadline:
            return
        self._advance(d)
        act = self.active_req[d]
        if deadline:
            full = self.share[d][min(self.max_batch[d], N_CURVE)]
            self.prot[d].update({r: -neg for neg, r in self.need[d] if r in act and -neg > full})
            self.need[d] = []
            self.edf_dev[d] = self.edf = True
            self._rebatch(d)
        else:
            for r, rem in self.held[d].items():
                act.add(r)
                self.fin_v[r] = self.V[d] + rem
            self.held[d] = {}
            self.finish[d] = [(self.fin_v[r], r) for r in act]
            heapq.heapify(self.finish[d])
            self.n[d] = len(act)
            self.need[d] = [(-need, r) for r, need in self.prot[d].items() if r in act]
            heapq.heapify(self.need[d])
            self.prot[d] = {}
            self.edf_dev[d] = False
        self._repower(d)
        self._reschedule(d)

    def load(self, d: int) -> int:
        """Requests admitted to d and not done: running, plus held back by the deadline-ordered batch."""
        return self.n[d] + len(self.held[d])

    def commitments(self, d: int) -> list[tuple[float, float]]:
        """(deadline, remaining device-seconds) of every request admitted to d and not done."""
        v = self._clock_now(d)
        dl, fin = self._deadline, self.fin_v
        return [(dl[r], fin[r] - v) for r in self.active_req[d]] + [
            (dl[r], rem) for r, rem in self.held[d].items()
        ]

    def reserved_w(self, s: int) -> float:
        """Facility watts site s may still add without any new admission (held requests resuming)."""
        if not self.edf:
            return 0.0
        return sum(
            (self.max_running_power(d) - self.power[d]) * self.pue[d]
            for d in range(len(self.site))
            if self.site[d] == s and self.held[d]
        )

    def max_running_power(self, d: int) -> float:
        """The most d can draw (device watts) with what it has admitted now."""
        if self.state[d] != AWAKE:
            return self._device_power(d)
        return self.PW[d][min(self.load(d), self.max_batch[d], N_CURVE)]

    def batch_limit(self, d: int, need: float) -> int:
        """The largest batch (<= max_batch) whose processor-sharing share is at least `need`
        (device-seconds per second); 0 if even a lone request gets less."""
        sh = self.share[d]
        k = 0
        lo, hi = 1, min(self.max_batch[d], N_CURVE)
        while lo <= hi:  # share is non-increasing in the batch size
            mid = (lo + hi) // 2
            if sh[mid] >= need:
                k, lo = mid, mid + 1
            else:
                hi = mid - 1
        return k

    def protected_need(self, d: int) -> float:
        """The largest share still needed by d's protected requests (see `_rebatch`)."""
        return max(self.prot[d].values(), default=0.0)

    def _rebatch(self, d: int) -> None:
        """Deadline-ordered batching (`batch_order = "deadline"`, as serving engines with priority
        scheduling do). A request admitted with a need (a share it must get to meet its deadline) is
        protected: the batch is at most as large as keeps every protected request at its need, refreshed
        as remaining work over time left, times `batch_margin`, and at most max_batch. Protected requests
        run first, then the others earliest deadline first (those past their deadline last); the rest
        are held (no service) until they fit. Throughput and power follow the running batch exactly as
        under processor sharing. The caller repowers and reschedules d."""
        self._advance(d)
        now, v, m = self.now, self.V[d], self.batch_margin
        held, prot, fin, dl = self.held[d], self.prot[d], self.fin_v, self._deadline
        items = [(r, fin[r] - v) for r in self.active_req[d]] + list(held.items())
        top = 0.0
        keyed = []
        for r, rem in items:
            left = dl[r] - now
            if r in prot:
                need = rem * m / left if left > 0 else float("inf")
                if need > self.share[d][1]:
                    del prot[r]  # it cannot make its deadline any more: no longer protected
                else:
                    prot[r] = need
                    top = max(top, need)
                    keyed.append((0, dl[r], r, rem))
                    continue
            hopeless = left <= 0 or rem * m / left > self.share[d][1]
            keyed.append((2 if hopeless else 1, dl[r], r, rem))
        keyed.sort()
        k = max(1, min(len(keyed), self.batch_limit(d, top) if top > 0 else self.max_batch[d]))
        run = keyed[:k]
        self.active_req[d] = {it[2] for it in run}
        for it in run:
            fin[it[2]] = v + it[3]
        self.finish[d] = [(fin[it[2]], it[2]) for it in run]
        heapq.heapify(self.finish[d])
        self.held[d] = {it[2]: it[3] for it in keyed[k:]}
        self.n[d] = k

    def max_need(self, d: int) -> float:
        h = self.need[d]
        while h and h[0][1] not in self.active_req[d]:
            heapq.heappop(h)
        return -h[0][0] if h else 0.0

    def delta_power_admit(self, d: int) -> float:
        """Facility watts added at d's site if d takes one more request."""
        n = min(self.n[d], N_CURVE - 1)
        return (self.PW[d][n + 1] - self.PW[d][n]) * self.pue[d]

    def wake_cost_w(self, d: int) -> float:
        """Facility watts added at d's site by waking d (idle minus sleep, plus the host if asleep)."""
        w = (self.idle[d] - self.sleep_w[d]) * self.pue[d]
        if self.node_awake[self.node[d]] == 0:
            w += self.fleet.nodes[self.node[d]].host_power_w * self.pue[d]
        return w

    def wake(self, d: int) -> None:
        if self.state[d] != SLEEP:
            self.draining[d] = False
            return
        self._advance(d)
        self.state[d] = WAKING
        self.draining[d] = False
        nd = self.node[d]
        if self.node_awake[nd] == 0:
            self._site_change(self.site[d], self.fleet.nodes[nd].host_power_w * self.pue[d])
        self.node_awake[nd] += 1
        self._repower(d)
        self._push(self.now + self.wake_s[d], _WAKE, d, 0)

    def sleep(self, d: int) -> None:
        """Put an idle device to sleep now (a busy one is drained instead)."""
        if self.state[d] == SLEEP:
            return
        if self.n[d] or self.state[d] == WAKING:
            self.draining[d] = True
            return
        self._advance(d)
        self.state[d] = SLEEP
        self.draining[d] = False
        self._repower(d)
        nd = self.node[d]
        self.node_awake[nd] -= 1
        if self.node_awake[nd] == 0:
            self._site_change(self.site[d], -self.fleet.nodes[nd].host_power_w * self.pue[d])

    # ---- the run ---------------------------------------------------------------------------------
    def _admit(self, r: int, d: int, need: float) -> None:
        if not self.allowed(r, d):
            raise PolicyError(
                f"policy {self.policy.name} placed request {r} on {self.fleet.devices[d].name}, "
                "which its stream's residency or class forbids"
            )
        if self.state[d] != AWAKE:
            raise PolicyError(f"policy {self.policy.name} placed request {r} on a device that is not awake")
        self._advance(d)
        self.dev_of[r] = d
        if self.edf_dev[d]:
            self.held[d][r] = self.work(r, d)
            if need > 0:
                self.prot[d][r] = need
            self._rebatch(d)
        else:
            self.n[d] += 1
            self.active_req[d].add(r)
            self.fin_v[r] = self.V[d] + self.work(r, d)
            heapq.heappush(self.finish[d], (self.fin_v[r], r))
            if need > 0:
                heapq.heappush(self.need[d], (-need, r))
        self.t_admit[r] = self.now
        self._repower(d)
        self._reschedule(d)

    def _complete(self, d: int) -> list[int]:
        self._advance(d)
        fh = self.finish[d]
        done = []
        tol = 1e-9 * max(1.0, self.V[d])
        while fh and fh[0][0] <= self.V[d] + tol:
            _, r = heapq.heappop(fh)
            done.append(r)
            self.active_req[d].discard(r)
            self.prot[d].pop(r, None)
            self.t_done[r] = self.now
        self.n[d] -= len(done)
        if self.edf_dev[d] and (done or self.held[d]):
            self._rebatch(d)
        if self.n[d] == 0:
            self.idle_since[d] = self.now
            self.need[d].clear()
        self._repower(d)
        self._reschedule(d)
        if self.n[d] == 0 and self.draining[d]:
            self.sleep(d)
        return done

    def queue_key(self, r: int) -> int:
        return self.stream_site[self.wl.stream[r]]

    def queued(self) -> list[int]:
        out = []
        for k, q in self.queues.items():
            out += [r for r in q[self.qhead[k] :] if self.dev_of[r] < 0]
        return out

    def _dispatch(self, sites: set[int] | None) -> None:
        """Retry waiting requests: the first `queue_scan` still waiting in each queue, in order
        (queue_scan = 1 is strict FIFO: the head blocks the rest)."""
        scan = getattr(self.policy, "queue_scan", 1)
        for k in sorted(self.queues):
            if sites is not None and k >= 0 and k not in sites:
                continue
            q = self.queues[k]
            h = self.qhead[k]
            seen = 0
            i = h
            while i < len(q) and seen < scan:
                r = q[i]
                i += 1
                if self.dev_of[r] >= 0:
                    continue
                seen += 1
                p = self.policy.route(self, r)
                if p is None:
                    if scan == 1:
                        break
                    continue
                self._admit(r, *p)
            while h < len(q) and self.dev_of[q[h]] >= 0:
                h += 1
            self.qhead[k] = h

    def run(self) -> None:
        wl = self.wl
        arrivals = wl.arrival
        n_req = len(wl)
        self.policy.start(self)
        ci = self.policy.control_interval_s
        if ci:
            self._push(ci, _CONTROL, 0, 0)
        done = 0
        idle_ticks = 0
        while done < n_req:
            na = arrivals[self.next_arrival] if self.next_arrival < n_req else float("inf")
            if self.events and self.events[0][0] <= na:
                t, _, kind, a, b = heapq.heappop(self.events)
                self.now = max(self.now, t)
                if kind == _COMPLETE:
                    if b != self.version[a]:
                        continue
                    done += len(self._complete(a))
                    self._dispatch({self.site[a]})
                elif kind == _WAKE:
                    if self.state[a] == WAKING:
                        self._advance(a)
                        self.state[a] = AWAKE
                        self.idle_since[a] = self.now
                        self._repower(a)
                        if self.draining[a]:
                            self.sleep(a)
                        self._dispatch({self.site[a]})
                else:
                    before = (done, self.next_arrival)
                    if self.edf:  # held requests grow more urgent as they wait
                        for d in range(len(self.held)):
                            if self.held[d]:
                                self._rebatch(d)
                                self._repower(d)
                                self._reschedule(d)
                    self.policy.control(self, self.now)
                    self._dispatch(None)
                    idle_ticks = (
                        idle_ticks + 1 if before == (done, self.next_arrival) and not any(self.n) else 0
                    )
                    if idle_ticks > 100_000:
                        raise PolicyError(
                            f"policy {self.policy.name} stalled with {n_req - done} requests "
                            f"waiting at t={self.now:.1f} s (power caps too tight?)"
                        )
                    if done < n_req:
                        self._push(self.now + ci, _CONTROL, 0, 0)
            else:
                if na == float("inf"):
                    raise PolicyError(
                        f"policy {self.policy.name} left {n_req - done} requests waiting forever"
                    )
                self.now = max(self.now, float(na))
                r = self.next_arrival
                self.next_arrival += 1
                k = self.queue_key(r)
                q = self.queues.setdefault(k, [])
                self.qhead.setdefault(k, 0)
                fifo_blocked = self.qhead[k] < len(q) and getattr(self.policy, "queue_scan", 1) == 1
                p = None if fifo_blocked else self.policy.route(self, r)
                if p is None:
                    q.append(r)
                else:
                    self._admit(r, *p)
        for d in range(len(self.fleet.devices)):
            self._advance(d)
        for s in range(len(self.fleet.sites)):
            self._site_change(s, 0.0)


def simulate_inference(fleet: Fleet, wl: InferenceWorkload, policy: InferencePolicy) -> InferenceResult:
    """Replay `wl` on `fleet` under `policy` and measure it."""
    t0 = time.perf_counter()
    sim = InferenceSim(fleet, wl, policy)
    sim.run()
    wall = time.perf_counter() - t0
    lat = sim.t_done - wl.arrival
    energy = float(sum(sim.site_energy))
    tokens = int(wl.out_tokens.sum())
    makespan = float(sim.now)
    nd = len(fleet.devices)
    viol = sum(
        1
        for r in range(len(wl))
        if sim.stream_site[wl.stream[r]] >= 0 and sim.site[sim.dev_of[r]] != sim.stream_site[wl.stream[r]]
    )
    by_owner: dict[str, int] = {}
    for i, s in enumerate(fleet.streams):
        by_owner[s.owner] = by_owner.get(s.owner, 0) + int(wl.out_tokens[wl.stream == i].sum())
    names = [s.name for s in fleet.sites]
    return InferenceResult(
        policy=policy.name,
        fleet=fleet.name,
        workload=wl.description,
        requests=len(wl),
        energy_j=energy,
        energy_kwh=energy / 3.6e6,
        j_per_token=energy / tokens if tokens else float("nan"),
        j_per_unit=energy / float(wl.units.sum()),
        j_per_image=energy / float(wl.units.sum())
        if all(s.workload_class == "image" for s in fleet.streams)
        else float("nan"),
        attainment=float(np.mean(lat <= wl.target + 1e-9)),
        latency_p50_s=float(np.percentile(lat, 50)),
        latency_p99_s=float(np.percentile(lat, 99)),
        makespan_s=makespan,
        utilization=float(sum(sim.busy_int) / (nd * makespan)) if makespan else 0.0,
        cost_usd=float(sum(sim.awake_int[d] * sim.cost_h[d] for d in range(nd)) / 3600),
        cap_violation_s=dict(zip(names, sim.over_s, strict=True)),
        max_over_cap_w={n: max(0.0, w) for n, w in zip(names, sim.over_w, strict=True)},
        site_energy_kwh={n: e / 3.6e6 for n, e in zip(names, sim.site_energy, strict=True)},
        residency_violations=viol,
        tokens_by_owner=by_owner,
        sim_wall_s=wall,
        power_series=dict(zip(names, sim.series, strict=True)),
        device_of_request=sim.dev_of.copy(),
        completion=sim.t_done.copy(),
    )
