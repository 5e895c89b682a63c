"""`medhub deid dicom IN OUT`: relative paths kept, held and non-DICOM files listed and not written."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from deid_fixtures import leaked, planted_dataset, with_file_meta
from medhub.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDHUB_HOME", str(tmp_path / "hub"))
    monkeypatch.setenv("MEDHUB_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("MEDHUB_LINKAGE_DIR", str(tmp_path / "linkage"))


def test_deid_dicom_command(tmp_path: Path, env: None) -> None:
    src = tmp_path / "in"
    (src / "study1" / "series1").mkdir(parents=True)
    ds, planted = planted_dataset()
    with_file_meta(ds).save_as(src / "study1" / "series1" / "img1.dcm", enforce_file_format=True)
    held, _ = planted_dataset(burned_in="YES")
    with_file_meta(held).save_as(src / "study1" / "held.dcm", enforce_file_format=True)
    (src / "notes.txt").write_text("not dicom")
    whole = (src / "study1" / "series1" / "img1.dcm").read_bytes()
    (src / "truncated.dcm").write_bytes(whole[:900])
    (src / "cut_pixels.dcm").write_bytes(whole[:-10])
    out = tmp_path / "out"
    report = tmp_path / "report.csv"
    res = CliRunner().invoke(
        app, ["deid", "dicom", str(src), str(out), "--source", "site1", "--report", str(report)]
    )
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["study1/series1/img1.dcm"], res.output
    back = pydicom.dcmread(out / "study1" / "series1" / "img1.dcm")
    assert leaked(back, planted) == []
    rows = report.read_text().splitlines()
    assert any(r.startswith("study1/held.dcm,held,BurnedInAnnotation is YES") for r in rows)
    assert any(r.startswith("notes.txt,skipped") for r in rows)
    assert any(r.startswith("truncated.dcm,failed,") for r in rows)
    assert any(r.startswith("cut_pixels.dcm,failed,") for r in rows)
    assert "1 written" in res.output and "1 held" in res.output
    assert (tmp_path / "keys" / "site1" / "uid.key").exists()


def test_deid_dicom_refuses_same_folder(tmp_path: Path, env: None) -> None:
    (tmp_path / "in").mkdir()
    res = CliRunner().invoke(app, ["deid", "dicom", str(tmp_path / "in"), str(tmp_path / "in")])
    assert res.exit_code != 0
