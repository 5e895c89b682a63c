"""The accelerator fleet: profiles, fleet files, traces, simulators, policies, the LP bound and the CLI."""

from __future__ import annotations

import ast
import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import shared_sub
from medhub.fleet.bound import energy_lower_bound
from medhub.fleet.inference_policies import INFERENCE_POLICIES, EnergyAware, inference_policy
from medhub.fleet.inference_sim import PolicyError, simulate_inference
from medhub.fleet.model import FleetError, load_fleet, parse_fleet
from medhub.fleet.profiles import ProfileError, load_profiles, throughput_curve, training_throughputs
from medhub.fleet.traces import (
    TraceError,
    inference_workload,
    load_azure_trace,
    load_philly_jobs,
)
from medhub.fleet.training_policies import TRAINING_POLICIES, training_policy
from medhub.fleet.training_sim import simulate_training

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "fleet"


def write_trace(path: Path, n: int, rate: float, seed: int = 0) -> Path:
    """A synthetic trace in the Azure 2023 format (7 fractional digits)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / rate, n))
    t0 = datetime(2023, 11, 16, 18, 15, 0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        for ti, c, g in zip(t, rng.lognormal(6.8, 0.8, n), rng.lognormal(4.9, 0.9, n), strict=True):
            w.writerow(
                [
                    (t0 + timedelta(seconds=float(ti))).strftime("%Y-%m-%d %H:%M:%S.%f") + "0",
                    int(c),
                    int(g) + 1,
                ]
            )
    return path


def small_fleet(cap_central: float = 50_000, cap_micro: float = 50_000, pue_micro: float = 1.6):
    return parse_fleet(_small_doc(cap_central, cap_micro, pue_micro), source="test-fleet")


def _small_doc(cap_central: float = 50_000, cap_micro: float = 50_000, pue_micro: float = 1.6) -> dict:
    return {
        "name": "test",
        "sites": [
            {
                "name": "central",
                "power_cap_w": cap_central,
                "pue": 1.3,
                "nodes": [
                    {"name": "h100", "devices": {"H100": 1}},
                    {"name": "l40s", "devices": {"L40S": 2}},
                    {"name": "rngd", "devices": {"RNGD": 3}},
                ],
            },
            {
                "name": "hosp",
                "kind": "micro",
                "power_cap_w": cap_micro,
                "pue": pue_micro,
                "nodes": [
                    {"name": "hosp-1", "host_power_w": 300, "devices": {"RNGD": 2, "L40S": 1}},
                ],
            },
        ],
        "owners": [{"name": "hosp"}, {"name": "cons"}],
        "streams": [
            {
                "name": "resident",
                "share": 0.4,
                "owner": "hosp",
                "residency": "hosp",
                "ttft_s": 2,
                "tpot_s": 0.1,
            },
            {"name": "open", "share": 0.6, "owner": "cons", "ttft_s": 2, "tpot_s": 0.1},
        ],
    }


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return load_azure_trace(write_trace(tmp_path_factory.mktemp("tr") / "t.csv", 1500, rate=5.0))


# ---- profiles ------------------------------------------------------------------------------------


def test_carried_profiles_agree_with_shared_device_profiles():
    root = shared_sub("data", "device_profiles")
    with open(root / "accelerator_specs.csv") as f:
        specs = {r["accelerator"]: r for r in csv.DictReader(f)}
    with open(root / "measured_inference_efficiency.csv") as f:
        meas = list(csv.DictReader(f))
    p = load_profiles()
    for ours, theirs in (
        ("H100", "NVIDIA H100 SXM"),
        ("L40S", "NVIDIA L40S"),
        ("RNGD", "FuriosaAI RNGD"),
        ("REBEL-Quad", "Rebellions REBEL-Quad (Rebel100)"),
    ):
        assert p[ours].memory_gb == float(specs[theirs]["memory_gb"])
        assert p[ours].peak_power_w == float(specs[theirs]["board_power_w"])
    llm = {
        r["accelerator"]: float(r["throughput"])
        for r in meas
        if r["benchmark"].startswith("Llama-3.1-8B") and r["count"] == "1"
    }
    assert p["H100"].throughput["llm"] == llm["NVIDIA H100 SXM"]
    assert p["L40S"].throughput["llm"] == llm["NVIDIA L40S"]
    assert p["RNGD"].throughput["llm"] == llm["FuriosaAI RNGD"]
    img = {
        (r["accelerator"], r["system"]): float(r["throughput"]) / int(r["count"])
        for r in meas
        if r["benchmark"] == "resnet50" and r["scenario"] == "Offline"
    }
    assert p["H100"].throughput["image"] == pytest.approx(
        img[("H100-SXM-80GB", "Dell XE9680_H100_SXM_80GBx8_TRT")], rel=1e-5
    )
    assert p["L40S"].throughput["image"] == pytest.approx(
        img[("L40S-48GB", "Dell R760xa_L40Sx4_TRT")], rel=1e-5
    )
    readme = (root / "README.md").read_text()
    assert "H100-80GB idle 75 W" in readme and p["H100"].idle_power_w == 75
    for prof in p.values():
        assert all(prof.sources.get(k) for k in ("memory_gb", "peak_power_w", "idle_power_w"))


def test_carried_training_table_agrees_with_gavel():
    path = shared_sub("data", "traces", "gavel_philly_derived", "simulation_throughputs.json")
    gavel = json.loads(path.read_text())
    ours = training_throughputs()
    assert len(ours) == len(gavel["v100"])
    for key in gavel["v100"]:
        jt, sc = ast.literal_eval(key)
        for g in ("k80", "p100", "v100"):
            assert ours[(jt, sc)][g] == pytest.approx(gavel[g][key]["null"], rel=1e-6)


def test_measurements_override_defaults(tmp_path):
    m = tmp_path / "meas.csv"
    m.write_text(
        "device,field,value,unit,source\nRNGD,llm_tokens_per_s,5000,tokens/s,our bench 2026-11\n"
        "REBEL-Quad,llm_tokens_per_s,9000,tokens/s,our bench\n"
    )
    p = load_profiles(m)
    assert p["RNGD"].throughput["llm"] == 5000
    assert "on-site measurement" in p["RNGD"].sources["llm_tokens_per_s"]
    assert p["H100"].throughput["llm"] == load_profiles()["H100"].throughput["llm"]
    with pytest.raises(ProfileError, match="REBEL-Quad.*llm"):
        load_profiles()["REBEL-Quad"].saturation("llm")
    assert p["REBEL-Quad"].saturation("llm") == 9000
    fleet_file = tmp_path / "f.yaml"
    fleet_file.write_text(
        yaml.safe_dump(
            {
                "measurements": "meas.csv",
                "sites": [
                    {"name": "a", "power_cap_w": 1000, "nodes": [{"name": "n", "devices": {"RNGD": 1}}]}
                ],
            }
        )
    )
    assert load_fleet(fleet_file).devices[0].profile.throughput["llm"] == 5000


def test_bad_measurements_name_file_and_line(tmp_path):
    m = tmp_path / "bad.csv"
    m.write_text("device,field,value\nRNGD,peak_power_w,lots\n")
    with pytest.raises(ProfileError, match=r"bad.csv:2: RNGD.peak_power_w is not a number"):
        load_profiles(m)
    (tmp_path / "nocol.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ProfileError, match="missing columns"):
        load_profiles(tmp_path / "nocol.csv")


def test_power_is_concave_and_above_full_load_line():
    for p in load_profiles().values():
        u = np.array(throughput_curve(p, 4 * p.max_batch))
        assert u[p.max_batch] == pytest.approx(1.0) and (np.diff(u) >= -1e-12).all()
        power = p.idle_power_w + (p.peak_power_w - p.idle_power_w) * u**p.power_exponent
        assert (power >= u * p.peak_power_w - 1e-9).all()  # what makes the LP bound valid


# ---- fleet files ---------------------------------------------------------------------------------


def test_example_fleets_load():
    central = load_fleet(EXAMPLES / "central.yaml")
    kinds = [d.profile.name for d in central.devices]
    assert (kinds.count("H100"), kinds.count("L40S"), kinds.count("RNGD")) == (4, 8, 16)
    micro = load_fleet(EXAMPLES / "micro-dc.yaml")
    assert micro.sites[micro.site_index("hospital-a")].power_cap_w == 5000
    assert any(s.residency == "hospital-a" for s in micro.streams)


def test_partitions():
    base = {
        "name": "p",
        "sites": [
            {
                "name": "a",
                "power_cap_w": 1e4,
                "nodes": [{"name": "n", "devices": {"RNGD": {"count": 2, "partition": 4}}}],
            }
        ],
    }
    f = parse_fleet(base)
    assert len(f.devices) == 8
    whole = load_profiles()["RNGD"]
    assert f.devices[0].profile.peak_power_w == pytest.approx(whole.peak_power_w / 4)
    assert f.devices[0].profile.throughput["llm"] == pytest.approx(whole.throughput["llm"] / 4)
    base["sites"][0]["nodes"][0]["devices"] = {"RNGD": {"count": 1, "partition": 3}}
    with pytest.raises(FleetError, match="cannot be split 3 ways"):
        parse_fleet(base)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"sites": []}, "non-empty list"),
        ([1, 2], "mapping at top level"),
        (
            {"sites": [{"name": "a", "power_cap_w": 10, "nodes": [{"devices": {"TPU": 1}}]}]},
            "unknown device type",
        ),
        ({"sites": [{"name": "a", "power_cap_w": -5}]}, "power_cap_w"),
        (
            {"sites": [{"name": "a", "power_cap_w": 10, "pue": 0.5, "nodes": [{"devices": {"H100": 1}}]}]},
            "PUE",
        ),
        (
            {
                "sites": [{"name": "a", "power_cap_w": 10, "nodes": [{"devices": {"H100": 1}}]}],
                "streams": [{"name": "s", "residency": "nowhere"}],
            },
            "unknown site",
        ),
        ({"sites": [{"name": "a", "power_cap_w": 10, "nodes": [{"devices": {"H100": "many"}}]}]}, "number"),
    ],
)
def test_bad_fleet_files(doc, match):
    with pytest.raises(FleetError, match=match):
        parse_fleet(doc, source="f.yaml")


def test_unreadable_fleet_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [unclosed")
    with pytest.raises(FleetError, match="bad.yaml: not valid YAML"):
        load_fleet(bad)
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(tmp_path / "absent.yaml")


# ---- traces --------------------------------------------------------------------------------------


def test_azure_trace_from_shared():
    tr = load_azure_trace(
        shared_sub("data", "traces", "azure_llm_inference_2023", "AzureLLMInferenceTrace_conv.csv")
    )
    assert len(tr.arrival_s) == 19366
    assert 3400 < tr.arrival_s[-1] < 3600
    assert (np.diff(tr.arrival_s) >= 0).all()
    wl = inference_workload(load_fleet(EXAMPLES / "central.yaml"), tr, scale=50, limit=1000, start=500)
    assert len(wl) == 1000 and wl.arrival[0] == 0
    assert wl.arrival[-1] == pytest.approx((tr.arrival_s[1499] - tr.arrival_s[500]) / 50)


def test_malformed_traces(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 nope,1,2\n"
    )
    with pytest.raises(TraceError, match=r"t.csv:3: malformed row"):
        load_azure_trace(p)
    p.write_text("a,b\n")
    with pytest.raises(TraceError, match="expected header"):
        load_azure_trace(p)
    q = tmp_path / "x.trace"
    q.write_text("ResNet-18 (batch size 16)\tcmd\t-n\t1\tmany\t0.0\t1\n")
    with pytest.raises(TraceError, match=r"x.trace:1: malformed numbers"):
        load_philly_jobs(q)
    q.write_text("only\tthree\tcols\n")
    with pytest.raises(TraceError, match="expected 7 tab-separated"):
        load_philly_jobs(q)


def test_stream_shares_are_respected(trace):
    f = small_fleet()
    wl = inference_workload(f, trace, scale=1)
    frac = np.mean(wl.stream == 0)
    assert abs(frac - 0.4) < 0.01


# ---- inference simulator -------------------------------------------------------------------------


def test_single_request_energy_is_exact():
    f = parse_fleet(
        {
            "name": "one",
            "sites": [
                {
                    "name": "a",
                    "power_cap_w": 1e4,
                    "pue": 1.5,
                    "nodes": [{"name": "n", "devices": {"RNGD": 1}}],
                }
            ],
            "streams": [{"name": "s", "ttft_s": 100, "tpot_s": 1}],
        }
    )
    from medhub.fleet.traces import InferenceWorkload

    wl = InferenceWorkload(
        np.array([0.0]),
        np.array([0]),
        np.array([1000.0]),
        np.array([1000]),
        np.array([1100.0]),
        "one request",
    )
    r = simulate_inference(f, wl, inference_policy("first-fit"))
    p = f.devices[0].profile
    u1 = throughput_curve(p, 1)[1]
    duration = 1000 / (p.throughput["llm"] * u1)
    power = p.idle_power_w + (p.peak_power_w - p.idle_power_w) * u1**p.power_exponent
    assert r.makespan_s == pytest.approx(duration)
    assert r.energy_j == pytest.approx(power * 1.5 * duration)
    assert r.attainment == 1.0


@pytest.mark.parametrize("policy", sorted(INFERENCE_POLICIES))
def test_inference_simulator_is_deterministic(trace, policy):
    f = small_fleet()
    wl = inference_workload(f, trace, scale=3)
    a = simulate_inference(f, wl, inference_policy(policy))
    b = simulate_inference(f, wl, inference_policy(policy))
    sa, sb = a.summary(), b.summary()
    sa.pop("sim_wall_s"), sb.pop("sim_wall_s")
    np.testing.assert_equal(sa, sb)  # NaN-aware
    assert (a.device_of_request == b.device_of_request).all()
    assert (a.completion == b.completion).all()
    assert (a.completion >= wl.arrival).all()


@pytest.mark.parametrize("policy", sorted(INFERENCE_POLICIES))
def test_residency_is_never_violated(trace, policy):
    f = small_fleet()
    wl = inference_workload(f, trace, scale=4)
    r = simulate_inference(f, wl, inference_policy(policy))
    hosp = f.site_index("hosp")
    resident = wl.stream == 0
    sites = np.array([f.devices[d].site for d in r.device_of_request])
    assert (sites[resident] == hosp).all()
    assert r.residency_violations == 0
    assert (sites[~resident] != hosp).any() or policy == "medhub"  # the open stream may go anywhere


def test_simulator_refuses_a_residency_breaking_policy(trace):
    class Rogue:
        name = "rogue"
        control_interval_s = None

        def start(self, sim):
            pass

        def route(self, sim, r):
            return 0, 0.0  # device 0 is in the central site

        def control(self, sim, now):
            pass

    f = small_fleet()
    with pytest.raises(PolicyError, match="residency"):
        simulate_inference(f, inference_workload(f, trace, scale=1, limit=50), Rogue())


@pytest.mark.parametrize("scale", [5, 20])
def test_medhub_never_exceeds_a_power_cap_under_stress(trace, scale):
    # caps well below what the devices draw flat out: 2.5 kW central (peak ~2.9 kW x 1.3), 1.2 kW micro
    f = small_fleet(cap_central=2500, cap_micro=1200)
    wl = inference_workload(f, trace, scale=scale, limit=800)
    r = simulate_inference(f, wl, inference_policy("medhub"))
    assert all(v == 0 for v in r.cap_violation_s.values()), r.cap_violation_s
    assert all(v <= 1e-6 for v in r.max_over_cap_w.values()), r.max_over_cap_w
    for site, series in r.power_series.items():
        assert max(p for _, p in series) <= f.sites[f.site_index(site)].power_cap_w + 1e-6
    # the same stress does push the always-on baseline over a cap, so the check above can fail
    base = simulate_inference(f, wl, inference_policy("capacity-proportional"))
    assert sum(base.cap_violation_s.values()) > 0


def test_medhub_starts_under_a_cap_below_idle_power(trace):
    f = small_fleet(cap_central=700, cap_micro=700)
    r = simulate_inference(f, inference_workload(f, trace, scale=1, limit=200), inference_policy("medhub"))
    assert sum(r.cap_violation_s.values()) == 0 and r.requests == 200


def test_medhub_saves_energy_and_meets_targets(trace):
    f = small_fleet()
    wl = inference_workload(f, trace, scale=6)
    med = simulate_inference(f, wl, EnergyAware())
    prop = simulate_inference(f, wl, inference_policy("capacity-proportional"))
    assert med.energy_j < 0.9 * prop.energy_j
    assert med.attainment >= 0.99


# ---- the LP bound --------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "seed"), [(2, 0), (6, 1), (12, 2)])
def test_lp_bound_never_exceeds_any_policy(tmp_path, scale, seed):
    tr = load_azure_trace(write_trace(tmp_path / "t.csv", 700, rate=5.0, seed=seed))
    f = small_fleet()
    wl = inference_workload(f, tr, scale=scale)
    lb = energy_lower_bound(f, wl)
    assert lb.energy_j > 0
    # never below the trivial bound: all work on the cheapest allowed device at full load
    for name in INFERENCE_POLICIES:
        r = simulate_inference(f, wl, inference_policy(name))
        assert lb.energy_j <= r.energy_j * (1 + 1e-9), name
        own = energy_lower_bound(f, wl, completion=r.completion)
        assert own.energy_j <= r.energy_j * (1 + 1e-9), name
        assert own.energy_j <= lb.energy_j * (1 + 1e-9)


def test_lp_bound_respects_residency_and_capacity():
    f = small_fleet()
    from medhub.fleet.traces import InferenceWorkload

    # 1 s of resident work that fits only on the micro site's devices
    n = 50
    wl = InferenceWorkload(
        np.zeros(n),
        np.zeros(n, dtype=int),
        np.full(n, 200.0),
        np.full(n, 200),
        np.full(n, 30.0),
        "resident burst",
    )
    lb = energy_lower_bound(f, wl)
    assert set(k for k, v in lb.units_by_group.items() if v > 1e-6) <= {"hosp/RNGD", "hosp/L40S"}


# ---- training ------------------------------------------------------------------------------------


def _jobs(tmp_path: Path, n: int = 60, seed: int = 0, spacing: float = 600.0, scales=(1, 1, 1, 2, 4)) -> Path:
    rng = np.random.default_rng(seed)
    types = [jt for (jt, sc) in training_throughputs() if sc == 1]
    lines = []
    for i in range(n):
        jt = types[rng.integers(len(types))]
        scale = int(rng.choice(scales))
        steps = int(rng.lognormal(9, 1.2))
        lines.append(f"{jt}\tcmd\t-n\t1\t{steps}\t{i * spacing:.1f}\t{scale}")
    p = tmp_path / "vc.trace"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_training_simulator_is_deterministic_and_policies_differ(tmp_path):
    f = load_fleet(EXAMPLES / "central.yaml")
    jobs = load_philly_jobs(_jobs(tmp_path), owners=["consortium-a", "consortium-b"], time_scale=4)
    res = {}
    for name in sorted(TRAINING_POLICIES):
        a = simulate_training(f, jobs, training_policy(name)).summary()
        b = simulate_training(f, jobs, training_policy(name)).summary()
        a.pop("sim_wall_s"), b.pop("sim_wall_s")
        assert a == b
        res[name] = a
    assert res["fifo"]["preemptions"] == 0
    assert res["gavel"]["avg_jct_s"] < res["fifo"]["avg_jct_s"]
    assert res["gavel-lp"]["avg_jct_s"] < res["fifo"]["avg_jct_s"]
    assert res["medhub"]["avg_jct_s"] < res["fifo"]["avg_jct_s"]


def test_training_energy_at_equal_horizon(tmp_path):
    from medhub.fleet.report import compare_training

    f = load_fleet(EXAMPLES / "central.yaml")
    jobs = load_philly_jobs(_jobs(tmp_path, spacing=3000), owners=["consortium-a"])
    cmp = compare_training(f, jobs)
    assert all(r.horizon_s == pytest.approx(cmp.horizon_s) for r in cmp.results.values())
    assert cmp.results["medhub"].energy_kwh < cmp.results["gavel"].energy_kwh


def test_training_medhub_respects_caps_and_residency(tmp_path):
    f = small_fleet(cap_central=1500, cap_micro=900)
    jobs = load_philly_jobs(_jobs(tmp_path, n=40, scales=(1, 1, 2)), time_scale=10)
    from dataclasses import replace

    jobs = [replace(j, residency="hosp") if j.job_id % 3 == 0 and j.scale <= 2 else j for j in jobs]
    r = simulate_training(f, jobs, training_policy("medhub"))
    assert all(v == 0 for v in r.cap_violation_s.values()), r.cap_violation_s
    base = simulate_training(f, jobs, training_policy("gavel"))
    assert sum(base.cap_violation_s.values()) > 0


# ---- CLI -----------------------------------------------------------------------------------------


def test_cli_simulate_and_compare(tmp_path, trace):
    from medhub.cli import app

    tpath = write_trace(tmp_path / "t.csv", 400, rate=5.0)
    runner = CliRunner()

    def fleet_cli(command, fleet, *extra):
        return runner.invoke(app, ["fleet", command, "--fleet", str(fleet), "--trace", str(tpath), *extra])

    out = tmp_path / "r.json"
    res = fleet_cli(
        "simulate", EXAMPLES / "central.yaml", "--policy", "medhub", "--scale", "20", "--out", str(out)
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["requests"] == 400 and doc["vs_lp_bound"] >= 1.0
    png = tmp_path / "power.png"
    res = fleet_cli("compare", EXAMPLES / "micro-dc.yaml", "--scale", "20", "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert "capacity-proportional" in res.output and "medhub" in res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = fleet_cli("simulate", tmp_path / "nope.yaml")
    assert res.exit_code == 2 and "cannot read" in res.output
    res = fleet_cli("simulate", EXAMPLES / "central.yaml", "--policy", "nonsense")
    assert res.exit_code == 2 and "unknown inference policy" in res.output


def test_cli_training(tmp_path):
    from medhub.cli import app

    res = CliRunner().invoke(
        app,
        [
            "fleet",
            "compare",
            "--fleet",
            str(EXAMPLES / "central.yaml"),
            "--trace",
            str(_jobs(tmp_path, n=30)),
            "--scale",
            "4",
            "--plot",
            str(tmp_path / "p.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "gavel" in res.output and (tmp_path / "p.png").exists()


def test_image_streams_run_only_where_an_image_throughput_is_known(trace):
    doc = {
        "name": "img",
        "sites": [
            {
                "name": "a",
                "power_cap_w": 1e5,
                "nodes": [{"name": "n", "devices": {"H100": 1, "L40S": 1, "RNGD": 2}}],
            }
        ],
        "streams": [{"name": "xray", "class": "image", "latency_s": 0.5}],
    }
    f = parse_fleet(doc)
    wl = inference_workload(f, trace, scale=1, limit=300, images_per_request=64)
    for name in INFERENCE_POLICIES:
        r = simulate_inference(f, wl, inference_policy(name))
        kinds = {f.devices[d].profile.name for d in r.device_of_request}
        assert "RNGD" not in kinds  # no public image figure for RNGD: it needs a measurement first
        assert r.j_per_image == pytest.approx(r.energy_j / (300 * 64))
        assert np.isnan(r.j_per_token)


def test_lp_bound_holds_for_a_convex_measured_power_curve(tmp_path, trace):
    m = tmp_path / "m.csv"
    m.write_text("device,field,value\nRNGD,power_exponent,1.8\nH100,power_exponent,1.5\n")
    f = small_fleet()
    f2 = parse_fleet(
        {**yaml.safe_load(yaml.safe_dump(_small_doc())), "measurements": str(m)}, source="convex"
    )
    assert f2.devices[-1].profile.power_exponent == 1.8
    wl = inference_workload(f2, trace, scale=6, limit=600)
    lb = energy_lower_bound(f2, wl)
    for name in INFERENCE_POLICIES:
        assert lb.energy_j <= simulate_inference(f2, wl, inference_policy(name)).energy_j
    assert lb.energy_j < energy_lower_bound(f, inference_workload(f, trace, scale=6, limit=600)).energy_j


@pytest.mark.parametrize("policy", ["fifo", "gavel", "medhub"])
def test_training_owner_quotas_hold_in_every_plan(tmp_path, policy):
    doc = yaml.safe_load((EXAMPLES / "central.yaml").read_text())
    doc["owners"] = [{"name": "consortium-a", "quota_devices": 4}, {"name": "consortium-b"}]
    f = parse_fleet(doc, source="quota")
    jobs = load_philly_jobs(_jobs(tmp_path, n=50), owners=["consortium-a", "consortium-b"], time_scale=8)
    pol = training_policy(policy)
    inner = pol.schedule
    seen = []

    def checked(sim, now):
        plan, awake = inner(sim, now)
        used = sum(int(sim.scale[j]) for j in plan if sim.jobs[j].owner == "consortium-a")
        seen.append(used)
        assert used <= 4
        return plan, awake

    pol.schedule = checked
    r = simulate_training(f, jobs, pol)
    assert max(seen) > 0 and r.jobs == 50


def test_unknown_job_type_is_a_clear_error(tmp_path):
    p = tmp_path / "odd.trace"
    p.write_text("GPT-9 (batch size 1)\tcmd\t-n\t1\t1000\t0.0\t1\n")
    jobs = load_philly_jobs(p)
    with pytest.raises(PolicyError, match="GPT-9"):
        simulate_training(load_fleet(EXAMPLES / "central.yaml"), jobs, training_policy("fifo"))


def test_bad_windows_are_clear_errors(trace):
    f = small_fleet()
    with pytest.raises(TraceError, match="outside the trace"):
        inference_workload(f, trace, start=10**6)
    with pytest.raises(TraceError, match="limit"):
        inference_workload(f, trace, limit=0)
    with pytest.raises(TraceError, match="scale"):
        inference_workload(f, trace, scale=0)
