"""Ray backend: the same policy that the simulator runs drives real placement on a Ray cluster.

Each fleet node is a Ray resource label `fleet-node/<node>` (capacity = its device count) and each device
asks for its accelerator resource: `GPU` for NVIDIA (Ray's built-in), `FURIOSA` for FuriosaAI RNGD and
`RBLN` for Rebellions (the names of Ray's accelerator managers). On a real cluster each Ray node is started
with its label (`ray start --resources '{"fleet-node/rngd-1": 8}'`) and the accelerator managers detect the
devices; on a machine without them, `ray_init_kwargs(fleet)` declares them as logical resources.

`plan_inference(fleet, wl, policy)` runs the policy (through the simulator, which is where its decisions
live) and returns one placement per request; `plan_training(fleet, jobs, policy, at=t)` returns the
gangs running at time t, each split over the nodes of its device group (first fit).
`run_on_ray(placements)` submits one task per placement that asks for exactly that node label and
accelerator count, and each task reports the resources Ray gave it
(`ray.get_runtime_context().get_assigned_resources()`), so a caller can check the landing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medhub.fleet.inference_sim import InferencePolicy, simulate_inference
from medhub.fleet.model import Fleet
from medhub.fleet.traces import InferenceWorkload, TrainingJob
from medhub.fleet.training_sim import TrainingPolicy, TrainingSim

NODE_PREFIX = "fleet-node/"


def node_label(node_name: str) -> str:
    return f"{NODE_PREFIX}{node_name}"


def ray_init_kwargs(fleet: Fleet, *, num_cpus: int = 1) -> dict:
    """Arguments for ray.init that declare the fleet's accelerators and node labels on one machine."""
    resources: dict[str, float] = {}
    gpus = 0.0
    for d in fleet.devices:
        kind = d.profile.ray_resource
        if kind == "GPU":
            gpus += 1
        else:
            resources[kind] = resources.get(kind, 0.0) + 1
        lab = node_label(fleet.nodes[d.node].name)
        resources[lab] = resources.get(lab, 0.0) + 1
    return {"num_cpus": num_cpus, "num_gpus": gpus, "resources": resources, "include_dashboard": False}


@dataclass(frozen=True)
class Placement:
    """One request (or one node's share of a training gang: `count` devices) on one node."""

    request: int
    device: str
    node: str
    site: str
    accelerator: str
    count: int = 1

    def ray_options(self) -> dict:
        opts: dict = {"num_cpus": 1, "resources": {node_label(self.node): self.count}}
        if self.accelerator == "GPU":
            opts["num_gpus"] = self.count
        else:
            opts["resources"][self.accelerator] = self.count
        return opts


def plan_inference(fleet: Fleet, wl: InferenceWorkload, policy: InferencePolicy) -> list[Placement]:
    """Where `policy` puts each request of `wl` (decided by replaying it through the simulator)."""
    res = simulate_inference(fleet, wl, policy)
    out = []
    for r, d in enumerate(res.device_of_request):
        dev = fleet.devices[int(d)]
        out.append(
            Placement(
                r, dev.name, fleet.nodes[dev.node].name, fleet.sites[dev.site].name, dev.profile.ray_resource
            )
        )
    return out


def plan_training(
    fleet: Fleet, jobs: list[TrainingJob], policy: TrainingPolicy, *, at: float = 0.0
) -> list[Placement]:
    """The gangs `policy` runs at the first decision at or after time `at`, split over nodes.

    `request` holds the job id; a gang wider than the free devices of one node spans several nodes
    (one placement per node part)."""
    snap: dict = {}

    def observe(sim: TrainingSim, t: float) -> None:
        if "alloc" not in snap and t >= at and (sim.alloc >= 0).any():
            snap["alloc"] = sim.alloc.copy()

    sim = TrainingSim(fleet, jobs, policy)
    sim.run(observer=observe)
    if "alloc" not in snap:
        return []
    alloc = snap["alloc"]
    out: list[Placement] = []
    for g, (s, dtype, idx) in enumerate(sim.groups):
        free: dict[int, int] = {}
        for i in idx:
            free[fleet.devices[i].node] = free.get(fleet.devices[i].node, 0) + 1
        for j in [int(j) for j in range(len(alloc)) if alloc[j] == g]:
            need = int(sim.scale[j])
            for node in sorted(free):
                take = min(need, free[node])
                if take <= 0:
                    continue
                free[node] -= take
                need -= take
                out.append(
                    Placement(
                        j,
                        f"{dtype} x{take}",
                        fleet.nodes[node].name,
                        fleet.sites[s].name,
                        fleet.devices[idx[0]].profile.ray_resource,
                        take,
                    )
                )
                if need == 0:
                    break
    return out


def _report(request: int) -> dict:
    import ray

    ctx = ray.get_runtime_context()
    return {"request": request, "assigned": dict(ctx.get_assigned_resources()), "node_id": ctx.get_node_id()}


def run_on_ray(placements: list[Placement], work: Callable[[int], dict] | None = None) -> list[dict]:
    """Run one Ray task per placement with that placement's resources; each returns what it ran with.

    Ray must already be initialised (ray.init(**ray_init_kwargs(fleet)) or a real cluster)."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError(
            "Ray is not initialised: call ray.init(**ray_init_kwargs(fleet)) or connect to a cluster"
        )
    task = ray.remote(work or _report)
    refs = [task.options(**p.ray_options()).remote(p.request) for p in placements]
    return ray.get(refs)


def check_landing(placements: list[Placement], reports: list[dict]) -> list[str]:
    """Problems where a task did not run with the node label and accelerator its placement asked for."""
    problems = []
    for p, rep in zip(placements, reports, strict=True):
        got = rep["assigned"]
        if got.get(node_label(p.node), 0) < p.count:
            problems.append(f"request {p.request}: expected node {p.node}, got {got}")
        if got.get(p.accelerator, 0) < p.count:
            problems.append(f"request {p.request}: expected accelerator {p.accelerator}, got {got}")
    return problems
