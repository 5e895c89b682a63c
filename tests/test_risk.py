"""Re-identification risk: k-anonymity, prosecutor risk, records at risk, l-diversity (hand-computed)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from medhub.cli import app
from medhub.privacy.risk import RiskPolicy, assess, read_table

WIDE = {"COLUMNS": "400"}  # rich wraps error panels to the terminal width

# classes by (age, zip): (30,100) x3, (40,200) x2, (50,300) x1  -> sizes 3,2,1
SMALL = pd.DataFrame(
    {
        "age": [30, 30, 30, 40, 40, 50],
        "zip": ["100", "100", "100", "200", "200", "300"],
        "dx": ["flu", "flu", "cold", "flu", "flu", "hiv"],
    }
)


def test_hand_computed_small_table() -> None:
    r = assess(SMALL, ["age", "zip"], ["dx"])
    assert r.rows == 6 and r.classes == 3 and r.k == 1
    assert r.max_risk == 1.0
    assert r.mean_risk == pytest.approx((3 * (1 / 3) + 2 * (1 / 2) + 1) / 6)  # = classes / rows
    # at risk (> 0.2): every record (1/3, 1/2, 1 all exceed 0.2)
    assert r.share_at_risk == 1.0
    # l-diversity of dx: {flu, cold}=2, {flu}=1, {hiv}=1 -> 1
    assert r.l_diversity == {"dx": 1}
    assert not r.passed
    assert {x.name: x.passed for x in r.rules} == {
        "k-anonymity": False,
        "max prosecutor risk": False,
        "records at risk": False,
        "l-diversity(dx)": False,
    }


def test_a_table_that_passes_and_threshold_semantics() -> None:
    df = pd.DataFrame({"sex": ["M"] * 5 + ["F"] * 6, "dx": list("aabbcabcdab")})
    r = assess(df, ["sex"], ["dx"])
    assert r.k == 5 and r.max_risk == pytest.approx(0.2) and r.share_at_risk == 0.0  # 0.2 is not > 0.2
    assert r.l_diversity["dx"] == 3 and r.passed
    strict = assess(df, ["sex"], policy=RiskPolicy(k=6))
    assert not strict.passed and [x.name for x in strict.rules if not x.passed] == [
        "k-anonymity",
    ]


def test_missing_values_form_their_own_class_and_inputs_of_all_kinds() -> None:
    df = pd.DataFrame({"a": [None, None, "x", "x"], "b": [1, 1, 1, 1]})
    r = assess(df, ["a", "b"])
    assert r.classes == 2 and r.k == 2
    assert assess(pa.Table.from_pandas(df), ["a", "b"]).k == 2
    rel = duckdb.sql("select * from (values (1, 'x'), (1, 'x'), (2, 'y')) t(a, b)")
    assert assess(rel, ["a", "b"]).k == 1
    with pytest.raises(KeyError, match="nope"):
        assess(df, ["nope"])
    with pytest.raises(ValueError, match="no rows"):
        assess(df.head(0), ["a"])
    with pytest.raises(ValueError, match="quasi-identifier"):
        assess(df, [])


def test_share_at_risk_counts_records_not_classes() -> None:
    # 95 records in classes of 5, 5 records alone: 5% at risk -> passes the 5% rule, fails k
    df = pd.DataFrame({"q": [i // 5 for i in range(95)] + [1000 + i for i in range(5)]})
    r = assess(df, ["q"])
    assert r.share_at_risk == pytest.approx(0.05)
    assert {x.name: x.passed for x in r.rules}["records at risk"] is True
    assert r.k == 1


def test_32k_rows_8_qis_vectorised() -> None:
    rng = np.random.default_rng(0)
    n = 32_000
    df = pd.DataFrame({f"q{i}": rng.integers(0, c, n) for i, c in enumerate([2, 9, 5, 17, 3, 4, 6, 8])})
    df["s"] = rng.integers(0, 3, n)
    r = assess(df, [f"q{i}" for i in range(8)], ["s"])
    # reference: pandas groupby
    sizes = df.groupby([f"q{i}" for i in range(8)]).size()
    assert r.classes == len(sizes) and r.k == sizes.min()
    assert r.share_at_risk == pytest.approx((sizes[sizes < 5].sum()) / n)


def test_read_table_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_table(tmp_path / "missing.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="bad.parquet"):
        read_table(bad)
    odd = tmp_path / "t.xlsx"
    odd.write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        read_table(odd)


def test_cli_risk(tmp_path) -> None:
    path = tmp_path / "t.csv"
    SMALL.to_csv(path, index=False)
    runner = CliRunner(env=WIDE)
    res = runner.invoke(app, ["risk", str(path), "--qi", "age", "--qi", "zip", "--sensitive", "dx", "--json"])
    assert res.exit_code == 1, res.output
    assert '"k": 1' in res.output and '"passed": false' in res.output
    ok = runner.invoke(
        app, ["risk", str(path), "--qi", "dx", "--k", "1", "--max-risk", "1", "--max-share", "1"]
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["risk", str(path), "--qi", "nope"])
    assert bad.exit_code != 0 and "nope" in bad.output
