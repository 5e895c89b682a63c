"""The demo's linkage, views and fleet steps end to end on a small population: the linkage unit's
F1 against the generator's answer key is reported, views return rows, the fleet comparison runs."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from medhub.config import Settings
from medhub.demo import STEPS, _pair_scores, run_demo


def test_pair_scores_count_pairs_of_records() -> None:
    truth = {1: "a", 2: "a", 3: "a", 4: "b"}
    assert _pair_scores(truth, truth) == (1.0, 1.0, 1.0)
    p, r, f = _pair_scores({1: "x", 2: "x", 3: "y", 4: "y"}, truth)  # 1 of 2 claimed right, 1 of 3 found
    assert (p, r) == (0.5, 1 / 3) and f == pytest.approx(0.4)


@pytest.mark.slow
def test_demo_links_views_and_simulates(settings: Settings) -> None:
    out = io.StringIO()
    ctx = run_demo(settings, Console(file=out, width=140), patients=40, seed=5)
    names = [s.__name__ for s in STEPS]
    assert names[-4:] == ["link", "views", "fleet", "report"]
    text = out.getvalue()
    lk = ctx.linkage
    assert lk["people"] == 40 and lk["records"] > lk["people"]
    assert lk["masters"] >= lk["multi_source"] > 0
    assert 0.9 <= lk["f1"] <= 1.0 and f"F1 {lk['f1']:.4f}" in text
    assert abs(lk["masters"] - lk["people"]) <= 2
    assert ctx.view_rows["patient_demographics"] == lk["records"]
    assert ctx.view_rows["condition_flat"] > 0 and ctx.view_rows["encounter_flat"] > 0
    assert set(ctx.fleet_energy) == {"first-fit", "capacity-proportional", "medhub"}
    assert all(v > 0 for v in ctx.fleet_energy.values())
    # the mapping source pseudonym -> MRN used for scoring is never written to the linkage unit's store
    for p in settings.linkage_dir.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert b"person_id" not in data and b"P5-" not in data
