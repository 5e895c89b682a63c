"""Inference routing policies behind one interface (`InferencePolicy` in inference_sim.py).

- `first-fit`: Kubernetes-default-like: the first awake device in fleet order with a free batch slot
  (concurrency < max_batch), else FIFO wait. Everything stays on; caps are not looked at.
- `capacity-proportional`: always on; smooth weighted round robin in proportion to each device's
  saturation throughput (what a load balancer with capacity weights does). Never waits, ignores caps.
- `medhub`: energy-aware. Route each request to the most energy-efficient awake device (facility J per
  unit at full load, PUE included) that can still meet every admitted request's latency target
  (processor-sharing rate >= what each needs) and whose site stays under its power cap after the
  admission; otherwise wait. Every `control_interval_s` it sizes the awake set to recent demand x
  `headroom` (cheapest devices first, resident streams first at their site), wakes what is missing
  (only if the site's cap allows its idle power) and puts devices idle for `idle_grace_s` to sleep.
  What admitted requests still need is refreshed (remaining work over time left) when it blocks an
  admission. At sites that some stream's residency pins load to (the micro DC), devices batch
  deadline-ordered (inference_sim: protected requests first, the rest earliest deadline first): a
  request goes to a device whose earliest-deadline-first schedule still holds with it, filling devices
  to a full batch first and then spreading to the least loaded; one that a full batch is too slow for
  is protected and goes where shrinking the batch loses the least throughput. That discipline is kept
  only while the site is near saturation (`edf_load`, measured on the last `mode_window_s` of
  arrivals, or while a batch holds work back or requests wait for the site); below it the site's
  devices switch to processor sharing and efficiency-first routing, which packs light load onto fewer
  awake devices (`InferenceSim.set_discipline` carries what they have admitted over).
All policies honour data residency (the simulator refuses anything else).
"""

from __future__ import annotations

import numpy as np

from medhub.fleet.inference_sim import AWAKE, SLEEP, InferenceSim


def _allowed_devices(sim: InferenceSim, key: int, cls: int) -> list[int]:
    return [d for d in range(len(sim.site)) if (key < 0 or sim.site[d] == key) and sim.tsat[cls][d] > 0]


class FirstFit:
    name = "first-fit"
    control_interval_s = None

    def start(self, sim: InferenceSim) -> None:
        self._devs: dict[tuple[int, int], list[int]] = {}

    def route(self, sim: InferenceSim, r: int) -> tuple[int, float] | None:
        s = sim.wl.stream[r]
        key = (sim.stream_site[s], sim.stream_class[s])
        devs = self._devs.get(key)
        if devs is None:
            devs = self._devs[key] = _allowed_devices(sim, *key)
        for d in devs:
            if sim.state[d] == AWAKE and sim.n[d] < sim.max_batch[d]:
                return d, 0.0
        return None

    def control(self, sim: InferenceSim, now: float) -> None:
        return None


class CapacityProportional:
    name = "capacity-proportional"
    control_interval_s = None

    def start(self, sim: InferenceSim) -> None:
        self._state: dict[tuple[int, int], tuple[list[int], list[float], list[float], float]] = {}

    def route(self, sim: InferenceSim, r: int) -> tuple[int, float] | None:
        s = sim.wl.stream[r]
        key = (sim.stream_site[s], sim.stream_class[s])
        st = self._state.get(key)
        if st is None:
            devs = _allowed_devices(sim, *key)
            w = [sim.tsat[key[1]][d] for d in devs]
            st = self._state[key] = (devs, w, [0.0] * len(devs), sum(w))
        devs, w, cw, total = st
        best = 0
        for i in range(len(devs)):
            cw[i] += w[i]
            if cw[i] > cw[best]:
                best = i
        cw[best] -= total
        return devs[best], 0.0

    def control(self, sim: InferenceSim, now: float) -> None:
        return None


class EnergyAware:
    """medhub's policy: efficient-first routing with latency and power-cap admission, plus power-down."""

    name = "medhub"

    def __init__(
        self,
        *,
        headroom: float = 1.0,
        control_interval_s: float = 0.5,
        window_s: float = 2.0,
        idle_grace_s: float = 3.0,
        margin: float = 1.05,
        u_eff: float = 0.9,
        drain_s: float = 5.0,
        queue_scan: int = 16,
        spill_ratio: float = 2.0,
        refresh_s: float = 0.05,
        batch_order: str = "deadline",
        edf_fill: float = 0.95,
        edf_load: float = 0.85,
        mode_window_s: float = 10.0,
    ):
        self.refresh_s, self.batch_order, self.edf_fill = refresh_s, batch_order, edf_fill
        self.edf_load, self.mode_window_s = edf_load, mode_window_s
        self.batch_margin = margin
        self.deadline_sites: set[int] = set()
        self.queue_scan, self.spill_ratio = queue_scan, spill_ratio
        self.headroom, self.control_interval_s, self.window_s = headroom, control_interval_s, window_s
        self.idle_grace_s, self.margin, self.u_eff, self.drain_s = idle_grace_s, margin, u_eff, drain_s

    def start(self, sim: InferenceSim) -> None:
        wl = sim.wl
        self._refreshed: dict[int, float] = {}
        # where residency pins a stream's load to one site, its devices batch deadline-ordered
        if self.batch_order == "deadline":
            self.deadline_sites = {s for s in sim.stream_site if s >= 0}
        sim.set_deadline_batching(self.deadline_sites)
        self.keys = sorted(
            {(sim.stream_site[s], sim.stream_class[s]) for s in range(len(sim.fleet.streams))},
            key=lambda k: (k[0] < 0, k),
        )
        self.order = {
            k: sorted(_allowed_devices(sim, *k), key=lambda d, c=k[1]: (sim.full_j[c][d], d))
            for k in self.keys
        }
        self._resplit(sim)
        # the resident load a deadline site is measured against: its most efficient tier's saturation
        self.site_keys = {
            s: [(k, self._tier_capacity(sim, k)) for k in self.keys if k[0] == s] for s in self.deadline_sites
        }
        key_of = np.array(
            [
                self.keys.index((sim.stream_site[s], sim.stream_class[s]))
                for s in range(len(sim.fleet.streams))
            ]
        )
        kr = key_of[wl.stream]
        self.cum = {
            k: np.concatenate([[0.0], np.cumsum(np.where(kr == i, wl.units, 0.0))])
            for i, k in enumerate(self.keys)
        }
        # never start above a cap: put the least efficient devices to sleep first
        for s in range(len(sim.cap)):
            devs = sorted(
                (d for d in range(len(sim.site)) if sim.site[d] == s),
                key=lambda d: -min(sim.full_j[c][d] for c in range(len(sim.classes))),
            )
            for d in devs:
                if sim.site_power[s] <= sim.cap[s]:
                    break
                sim.sleep(d)

    def _resplit(self, sim: InferenceSim) -> None:
        """Per key: the devices that share themselves, and those batching deadline-ordered now."""
        self.split = {
            k: ([d for d in devs if not sim.edf_dev[d]], [d for d in devs if sim.edf_dev[d]])
            for k, devs in self.order.items()
        }

    def _tier_capacity(self, sim: InferenceSim, k: tuple[int, int]) -> float:
        """Saturation throughput (units/s) of key k's most energy-efficient device tier."""
        devs = self.order[k]
        if not devs:
            return 0.0
        best = sim.full_j[k[1]][devs[0]]
        return sum(sim.tsat[k[1]][d] for d in devs if sim.full_j[k[1]][d] <= best * 1.01)

    def _site_load(self, sim: InferenceSim, now: float, s: int) -> float:
        """Resident demand pinned to site s over the last `mode_window_s`, as a fraction of its most
        efficient tier's saturation throughput (arrivals so far only)."""
        hi = sim.next_arrival
        lo = int(np.searchsorted(sim.wl.arrival[:hi], now - self.mode_window_s, side="left"))
        w = self.mode_window_s
        return sum((self.cum[k][hi] - self.cum[k][lo]) / w / cap for k, cap in self.site_keys[s] if cap > 0)

    def _choose_disciplines(self, sim: InferenceSim, now: float) -> None:
        """Deadline-ordered batching at a pinned site only while its resident demand is near its efficient
        capacity (>= `edf_load`): then holding relaxed work in deadline order keeps every device at a
        full batch. Below it processor sharing with efficiency-first routing consolidates the load onto
        fewer awake devices."""
        if now < self.mode_window_s:  # no full window measured yet: keep deadline ordering
            return
        changed = False
        for s in self.deadline_sites:
            devs = [d for d in range(len(sim.site)) if sim.site[d] == s]
            # a batch holding work back, or requests waiting for the site, mean it is still saturated
            busy = any(sim.held[d] for d in devs) or any(sim.queue_key(r) == s for r in sim.queued())
            deadline = busy or self._site_load(sim, now, s) >= self.edf_load
            for d in devs:
                if sim.edf_dev[d] != deadline:
                    sim.set_discipline(d, deadline)
                    changed = True
        if changed:
            self._resplit(sim)

    def _try(
        self, sim: InferenceSim, r: int, devs: list[int], slack: float, own: bool, allow_draining: bool
    ) -> tuple[int, float] | None:
        units = sim.wl.units[r]
        c = sim.stream_class[sim.wl.stream[r]]
        for d in devs:
            if sim.state[d] != AWAKE or (sim.draining[d] and not allow_draining):
                continue
            n1 = sim.n[d] + 1
            if n1 >= len(sim.share[d]):
                continue
            sh = sim.share[d][n1]
            need = units / sim.tsat[c][d] / slack * self.margin if own else 0.0
            if need > sh:
                continue
            if sh < sim.max_need(d) and sh < self._refresh_needs(sim, d):
                continue
            s = sim.site[d]
            if sim.site_power[s] + sim.delta_power_admit(d) > sim.cap[s]:
                continue
            sim.draining[d] = False
            return d, need
        return None

    def _edf_fits(self, sim: InferenceSim, d: int, deadline: float, work: float, rate: float) -> bool:
        """Whether d, serving its requests earliest deadline first at `rate` device-seconds per second,
        still meets every deadline (of those it can still meet) with one more request of `work` due at
        `deadline`."""
        now, fastest = sim.now, sim.share[d][1]
        items = [(dl, w) for dl, w in sim.commitments(d) if dl > now and w / (dl - now) <= fastest]
        items.append((deadline, work))
        items.sort()
        cum = 0.0
        for dl, w in items:
            cum += w
            if cum > rate * (dl - now):
                return False
        return True

    def _try_edf(
        self, sim: InferenceSim, r: int, devs: list[int], slack: float, own: bool, allow_draining: bool
    ) -> tuple[int, float] | None:
        """Deadline-ordered devices, the most efficient tier first. Among its devices whose
        earliest-deadline-first schedule still holds with r: where shrinking the batch for r (if a full
        batch is too slow for it, it is protected) loses the least throughput; then the most loaded device
        still short of a full batch; once all have one, the least loaded."""
        units = sim.wl.units[r]
        c = sim.stream_class[sim.wl.stream[r]]
        deadline = sim.now + slack
        best, tier, best_key, best_need = -1, 0.0, (0.0, 0, 0), 0.0
        for d in devs:
            if best >= 0 and sim.full_j[c][d] > tier * 1.01:
                break
            if sim.state[d] != AWAKE or (sim.draining[d] and not allow_draining):
                continue
            b = sim.max_batch[d]
            w = units / sim.tsat[c][d]
            x = w / slack * self.margin if own else 0.0
            need = 0.0
            if x > sim.share[d][b]:  # a full batch is too slow for it: protect it
                top = max(x, sim.protected_need(d))
                k_new = sim.batch_limit(d, top)
                if k_new < len(sim.prot[d]) + 1:
                    continue
                k_old = sim.batch_limit(d, sim.protected_need(d)) if sim.prot[d] else b
                loss = sim.U[d][min(k_old, sim.load(d) + 1)] - sim.U[d][min(k_new, sim.load(d) + 1)]
                rate = self.edf_fill * sim.U[d][k_new]
                need = x
            else:
                loss = 0.0
                k_new = sim.batch_limit(d, sim.protected_need(d)) if sim.prot[d] else b
                rate = self.edf_fill * sim.U[d][k_new]
            if own and not self._edf_fits(sim, d, deadline, w, rate):
                continue
            s = sim.site[d]
            extra = (sim.PW[d][min(sim.load(d) + 1, b)] - sim.max_running_power(d)) * sim.pue[d]
            if sim.site_power[s] + sim.reserved_w(s) + extra > sim.cap[s]:
                continue
            # fill devices to a full batch first (most loaded first, so the rest can sleep), then
            # spread what goes beyond a full batch to the least loaded
            ld = sim.load(d)
            key = (loss, 0, -ld) if ld < b else (loss, 1, ld)
            if best < 0 or key < best_key:
                best, tier, best_key, best_need = d, sim.full_j[c][d], key, need
        if best < 0:
            return None
        sim.draining[best] = False
        return best, best_need

    def _refresh_needs(self, sim: InferenceSim, d: int) -> float:
        """What admitted requests on d still need, recomputed at most every `refresh_s` per device."""
        if sim.now - self._refreshed.get(d, -1.0) < self.refresh_s:
            return sim.max_need(d)
        self._refreshed[d] = sim.now
        return sim.refresh_needs(d, self.margin)

    def route(self, sim: InferenceSim, r: int) -> tuple[int, float] | None:
        s = sim.wl.stream[r]
        devs = self.order[(sim.stream_site[s], sim.stream_class[s])]
        slack = sim.wl.target[r] - (sim.now - sim.wl.arrival[r])
        c = sim.stream_class[s]
        feasible = slack > 0 and any(
            sim.wl.units[r] / sim.tsat[c][d] / slack * self.margin <= sim.share[d][1] for d in devs
        )
        # devices that share themselves first, then those that batch deadline-ordered (residency pins
        # load there: a stream that may run elsewhere keeps off them while it can)
        shared, ordered = self.split[(sim.stream_site[s], c)]
        if not feasible:  # late already: serve best effort without hurting anyone admitted
            return self._try(sim, r, shared, 1.0, False, True) or self._try_edf(
                sim, r, ordered, 1.0, False, True
            )
        for allow_draining in (False, True):
            p = self._try(sim, r, shared, slack, True, allow_draining) or self._try_edf(
                sim, r, ordered, slack, True, allow_draining
            )
            if p:
                return p
        return None

    def control(self, sim: InferenceSim, now: float) -> None:
        wl = sim.wl
        if self.edf_load > 0:  # 0: deadline-ordered batching at pinned sites throughout
            self._choose_disciplines(sim, now)
        hi = sim.next_arrival
        lo = int(np.searchsorted(wl.arrival[:hi], now - self.window_s, side="left"))
        span = min(self.window_s, max(now, 1e-9))
        queued = sim.queued()
        claimed: set[int] = set()
        for i, k in enumerate(self.keys):
            cum = self.cum[k]
            rate = (cum[hi] - cum[lo]) / span
            backlog = sum(
                wl.units[r]
                for r in queued
                if (sim.stream_site[wl.stream[r]], sim.stream_class[wl.stream[r]]) == k
            )
            need = self.headroom * (rate + backlog / self.drain_s) / self.u_eff
            have = 0.0
            best = sim.full_j[k[1]][self.order[k][0]] if self.order[k] else 0.0
            for d in self.order[k]:
                if have >= need:
                    break
                # devices far less efficient than the best are woken only for real backlog
                if backlog == 0 and sim.full_j[k[1]][d] > self.spill_ratio * best:
                    break
                if d in claimed:
                    continue
                claimed.add(d)
                have += sim.tsat[k[1]][d]
            del i
        for d in sorted(claimed):
            if sim.state[d] == SLEEP:
                s = sim.site[d]
                if sim.site_power[s] + sim.reserved_w(s) + sim.wake_cost_w(d) <= sim.cap[s]:
                    sim.wake(d)
            else:
                sim.draining[d] = False
        for d in range(len(sim.site)):
            if d in claimed or sim.state[d] == SLEEP:
                continue
            if sim.n[d] == 0 and sim.state[d] == AWAKE and now - sim.idle_since[d] >= self.idle_grace_s:
                sim.sleep(d)
            elif sim.n[d] > 0:
                sim.draining[d] = True


INFERENCE_POLICIES = {
    "first-fit": FirstFit,
    "capacity-proportional": CapacityProportional,
    "medhub": EnergyAware,
}


def inference_policy(name: str):
    """A fresh policy object by name."""
    try:
        return INFERENCE_POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown inference policy {name!r} (known: {sorted(INFERENCE_POLICIES)})") from None
