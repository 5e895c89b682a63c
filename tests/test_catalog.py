"""The catalog lists each dataset with its count, time range and size; the CLI prints it as JSON."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medhub.cli import app
from medhub.config import Settings
from medhub.lake.catalog import catalog
from medhub.lake.intake import ingest_paths
from test_ingest import hmac_gate, observation, patient, write_ndjson, write_wfdb


def _fill(settings: Settings, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    obs = [observation("o1", "p1"), observation("o2", "p1")]
    obs[1]["meta"]["lastUpdated"] = "2025-06-01T00:00:00Z"
    write_ndjson(inp / "a.ndjson", [patient("p1"), *obs])
    shutil.copy(get_testdata_file("CT_small.dcm"), inp / "ct.dcm")
    write_wfdb(inp)
    ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)
    write_ndjson(tmp_path / "b.ndjson", [patient("p9")])
    ingest_paths(settings, "hosp-b", [tmp_path / "b.ndjson"], gate=hmac_gate)


def test_catalog_counts_ranges_and_sizes(settings: Settings, tmp_path: Path) -> None:
    _fill(settings, tmp_path)
    entries = {(e.kind, e.source, e.type): e for e in catalog(settings.lake_dir)}
    assert set(entries) == {
        ("fhir", "hosp-a", "Patient"),
        ("fhir", "hosp-a", "Observation"),
        ("fhir", "hosp-b", "Patient"),
        ("dicom", "hosp-a", "CT"),
        ("biosignal", "hosp-a", "wfdb"),
    }
    obs = entries[("fhir", "hosp-a", "Observation")]
    assert (
        obs.count == 2 and obs.time_min == "2024-01-02T03:04:05Z" and obs.time_max == "2025-06-01T00:00:00Z"
    )
    ct = entries[("dicom", "hosp-a", "CT")]
    assert ct.count == 1 and ct.bytes > 30_000  # the Parquet row plus the image blob
    assert ct.time_min == "20040119"
    assert all(e.bytes > 0 and e.files == 1 for e in entries.values())


def test_catalog_and_quarantine_cli_json(settings: Settings, tmp_path: Path, monkeypatch) -> None:
    _fill(settings, tmp_path)
    (tmp_path / "bad.ndjson").write_bytes(b"{not json\n")
    ingest_paths(settings, "hosp-a", [tmp_path / "bad.ndjson"], gate=hmac_gate)
    monkeypatch.setenv("MEDHUB_HOME", str(settings.home))
    monkeypatch.setenv("MEDHUB_KEY_DIR", str(settings.key_dir))
    monkeypatch.setenv("MEDHUB_LINKAGE_DIR", str(settings.linkage_dir))
    runner = CliRunner()
    out = runner.invoke(app, ["catalog", "--json"])
    assert out.exit_code == 0, out.output
    rows = orjson.loads(out.stdout)
    assert {(r["kind"], r["source"], r["type"], r["count"]) for r in rows} >= {
        ("fhir", "hosp-b", "Patient", 1)
    }
    out = runner.invoke(app, ["quarantine", "list", "--json"])
    assert out.exit_code == 0, out.output
    (q,) = orjson.loads(out.stdout)
    assert q["file"].endswith("bad.ndjson") and q["line"] == 1 and q["reason"].startswith("invalid JSON")
    out = runner.invoke(app, ["quarantine", "list"])
    assert out.exit_code == 0 and "quarantine (1)" in out.stdout and "invalid" in out.stdout
    out = runner.invoke(app, ["catalog"])
    assert out.exit_code == 0 and "Observation" in out.stdout
