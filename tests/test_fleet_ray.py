"""The Ray backend: the policy's placements land on the declared accelerators and node labels.

One local Ray instance per module (1 CPU, accelerators declared as logical resources), shut down after.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from medhub.fleet.inference_policies import inference_policy
from medhub.fleet.model import load_fleet
from medhub.fleet.ray_backend import check_landing, node_label, plan_inference, ray_init_kwargs, run_on_ray
from medhub.fleet.traces import RequestTrace, inference_workload

ray = pytest.importorskip("ray")
FLEET = load_fleet(Path(__file__).resolve().parents[1] / "examples" / "fleet" / "micro-dc.yaml")


@pytest.fixture(scope="module")
def cluster():
    ray.init(**ray_init_kwargs(FLEET), log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _workload():
    rng = np.random.default_rng(3)
    n = 3000
    trace = RequestTrace(
        np.cumsum(rng.exponential(1 / 400, n)), rng.integers(200, 3000, n), rng.integers(20, 400, n)
    )
    return inference_workload(FLEET, trace, scale=1.0)


def test_declared_resources_match_the_fleet(cluster):
    res = cluster.cluster_resources()
    kinds = Counter(d.profile.ray_resource for d in FLEET.devices)
    assert res["GPU"] == kinds["GPU"] and res["FURIOSA"] == kinds["FURIOSA"]
    for node in FLEET.nodes:
        assert res[node_label(node.name)] == sum(1 for d in FLEET.devices if FLEET.nodes[d.node] is node)


@pytest.mark.slow
def test_tasks_land_where_the_policy_said(cluster):
    wl = _workload()
    placements = plan_inference(FLEET, wl, inference_policy("medhub"))
    kinds = Counter(p.accelerator for p in placements)
    assert kinds["GPU"] > 0 and kinds["FURIOSA"] > 0  # the load reaches both kinds of device
    # one task per (node, accelerator) pair the policy used, plus a spread of requests
    sample = {}
    for p in placements:
        sample.setdefault((p.node, p.accelerator), p)
    chosen = list(sample.values()) + placements[:: max(1, len(placements) // 40)]
    reports = run_on_ray(chosen)
    assert check_landing(chosen, reports) == []
    for p, rep in zip(chosen, reports, strict=True):
        assert rep["request"] == p.request
        assert rep["assigned"][node_label(p.node)] == 1
    resident = [p for p in placements if FLEET.streams[wl.stream[p.request]].residency]
    assert resident and all(p.site == "hospital-a" for p in resident)


def test_a_wrong_landing_is_reported():
    from medhub.fleet.ray_backend import Placement

    p = Placement(0, "x", "rngd-1", "central-dc", "FURIOSA")
    bad = {"request": 0, "assigned": {"CPU": 1.0, "GPU": 1.0, node_label("h100-1"): 1.0}}
    problems = check_landing([p], [bad])
    assert len(problems) == 2


@pytest.mark.slow
def test_training_gangs_land_where_the_policy_said(cluster, tmp_path):
    from medhub.fleet.ray_backend import plan_training
    from medhub.fleet.traces import load_philly_jobs
    from medhub.fleet.training_policies import training_policy

    lines = [
        f"ResNet-50 (batch size 64)\tcmd\t-n\t1\t{20000 + 1000 * i}\t{10.0 * i:.1f}\t{[1, 2, 4, 8][i % 4]}"
        for i in range(12)
    ]
    (tmp_path / "vc.trace").write_text("\n".join(lines) + "\n")
    jobs = load_philly_jobs(tmp_path / "vc.trace", owners=["consortium-a"])
    placements = plan_training(FLEET, jobs, training_policy("medhub"), at=100.0)
    assert placements and any(p.count > 1 for p in placements)
    reports = run_on_ray(placements)
    assert check_landing(placements, reports) == []
    per_job = Counter()
    for p in placements:
        per_job[p.request] += p.count
    assert all(per_job[j] == jobs[j].scale for j in per_job)
