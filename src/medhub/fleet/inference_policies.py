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
    ):
        self.queue_scan, self.spill_ratio = queue_scan, spill_ratio
        self.headroom, self.control_interval_s, self.window_s = headroom, control_interval_s, window_s
        self.idle_grace_s, self.margin, self.u_eff, self.drain_s = idle_grace_s, margin, u_eff, drain_s

    def start(self, sim: InferenceSim) -> None:
        wl = sim.wl
        self.keys = sorted(
            {(sim.stream_site[s], sim.stream_class[s]) for s in range(len(sim.fleet.streams))},
            key=lambda k: (k[0] < 0, k),
        )
        self.order = {
            k: sorted(_allowed_devices(sim, *k), key=lambda d, c=k[1]: (sim.full_j[c][d], d))
            for k in self.keys
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
            if sh < sim.max_need(d):
                continue
            s = sim.site[d]
            if sim.site_power[s] + sim.delta_power_admit(d) > sim.cap[s]:
                continue
            sim.draining[d] = False
            return d, need
        return None

    def route(self, sim: InferenceSim, r: int) -> tuple[int, float] | None:
        s = sim.wl.stream[r]
        devs = self.order[(sim.stream_site[s], sim.stream_class[s])]
        slack = sim.wl.target[r] - (sim.now - sim.wl.arrival[r])
        c = sim.stream_class[s]
        feasible = slack > 0 and any(
            sim.wl.units[r] / sim.tsat[c][d] / slack * self.margin <= sim.share[d][1] for d in devs
        )
        if not feasible:  # late already: serve best effort without hurting anyone admitted
            return self._try(sim, r, devs, 1.0, False, True)
        return self._try(sim, r, devs, slack, True, False) or self._try(sim, r, devs, slack, True, True)

    def control(self, sim: InferenceSim, now: float) -> None:
        wl = sim.wl
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
                if sim.site_power[s] + sim.wake_cost_w(d) <= sim.cap[s]:
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
