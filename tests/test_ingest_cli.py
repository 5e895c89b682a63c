"""`medhub ingest` prints a summary per source and type and names each quarantined file and line;
an oversized JSON document is refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medhub.cli import app
from medhub.config import Settings
from medhub.ingest import fhir
from medhub.ingest.fhir import read_json
from medhub.ingest.records import Rejected
from test_ingest import observation, patient, write_bundle, write_ndjson


def test_ingest_command_prints_summary_and_problems(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in (
        ("MEDHUB_HOME", settings.home),
        ("MEDHUB_KEY_DIR", settings.key_dir),
        ("MEDHUB_LINKAGE_DIR", settings.linkage_dir),
    ):
        monkeypatch.setenv(k, str(v))
    inp = tmp_path / "in"
    inp.mkdir()
    write_ndjson(inp / "a.ndjson", [patient("p1"), observation("o1", "p1")])
    (inp / "b.ndjson").write_bytes(b'{"resourceType": "Patient"}\n')
    out = CliRunner().invoke(app, ["ingest", "--source", "hosp-a", str(inp)])
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "ingest summary" in text and "Observation" in text and "Patient" in text
    assert "b.ndjson:1" in text.replace("\n", "") and "Patient resource has no id" in text
    again = CliRunner().invoke(app, ["ingest", "--source", "hosp-a", str(inp)])
    assert again.exit_code == 0 and "duplicate 2" in again.stdout


def test_json_document_over_the_size_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write_bundle(tmp_path / "big.json", "p1")
    monkeypatch.setattr(fhir, "MAX_JSON_BYTES", 100)
    (item,) = list(read_json(p))
    assert isinstance(item, Rejected)
    assert "larger than the 100 byte limit" in item.reason and "NDJSON" in item.reason
