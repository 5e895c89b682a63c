"""`medhub link`: the whole token path on two CSV files."""

from __future__ import annotations

import dataclasses
import random

import pandas as pd
from typer.testing import CliRunner

from medhub.cli import app
from medhub.synth.people import hospital_record, make_people

WIDE = {"COLUMNS": "400"}  # rich wraps error panels to the terminal width


def test_cli_link_two_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEDHUB_HOME", str(tmp_path / "hub"))
    monkeypatch.setenv("MEDHUB_LINKAGE_DIR", str(tmp_path / "linkage"))
    people = make_people(600, seed=31)
    frames = []
    for side, chosen in (("a", people[:400]), ("b", people[200:])):
        df = pd.DataFrame(
            [
                dataclasses.asdict(hospital_record(p, random.Random(f"{side}-{i}")))
                for i, p in enumerate(chosen)
            ]
        )
        # a hospital export with its own column names
        df = df.rename(
            columns={
                "family_name": "성",
                "given_name": "이름",
                "birth_date": "생년월일",
                "phone": "전화",
                "person_id": "truth",
            }
        )
        df["mrn"] = [f"{side}{i}" for i in range(len(df))]
        frames.append(df)
        df.to_csv(tmp_path / f"{side}.csv", index=False)
    out = tmp_path / "matches.csv"
    args = [
        "link",
        "--left",
        str(tmp_path / "a.csv"),
        "--right",
        str(tmp_path / "b.csv"),
        "--out",
        str(out),
        "--left-id",
        "mrn",
        "--right-id",
        "mrn",
        "--map",
        "성=family_name",
        "--map",
        "이름=given_name",
        "--map",
        "생년월일=birth_date",
        "--map",
        "전화=phone",
        "--map",
        "rrn=rrn",
        "--map",
        "sex=sex",
        "--map",
        "address=address",
        "--map",
        "postcode=postcode",
    ]
    res = CliRunner().invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    m = pd.read_csv(out)
    assert list(m.columns) == ["left_id", "right_id", "probability", "weight", "stage"]
    truth_a = dict(zip(frames[0]["mrn"], frames[0]["truth"], strict=True))
    truth_b = dict(zip(frames[1]["mrn"], frames[1]["truth"], strict=True))
    tp = sum(truth_a[a] == truth_b[b] for a, b in zip(m["left_id"], m["right_id"], strict=True))
    assert tp >= 195 and len(m) - tp <= 2  # 200 people in both files
    text = out.read_text()
    for name in frames[0]["성"].head(20):
        assert name not in text
    # no key was stored for a one-off run
    assert not (tmp_path / "linkage").exists() or not list((tmp_path / "linkage").rglob("*.key"))


def test_cli_link_bad_input(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    res = CliRunner().invoke(
        app,
        env=WIDE,
        args=[
            "link",
            "--left",
            str(tmp_path / "a.csv"),
            "--right",
            str(tmp_path / "missing.csv"),
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert res.exit_code != 0
    assert "a.csv" in res.output and "no identity field" in res.output
    (tmp_path / "b.csv").write_text("phone\n010-1234-5678\n")
    res = CliRunner().invoke(
        app,
        env=WIDE,
        args=[
            "link",
            "--left",
            str(tmp_path / "b.csv"),
            "--right",
            str(tmp_path / "missing.csv"),
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert res.exit_code != 0 and "missing.csv" in res.output
