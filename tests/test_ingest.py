"""Ingestion: each format lands, each kind of bad input is quarantined with a clear reason naming the
file (and line), the rest of the batch goes on, and a second run adds nothing.

These tests use a small HMAC test gate (below) so that they exercise ingestion alone; the hub's
own gate is exercised by test_ingest_privacy.py and test_ingest_resume.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medhub.config import Settings
from medhub.ingest.detect import sniff
from medhub.ingest.records import BiosignalItem, DicomItem, FhirItem, HeldForReview, Item
from medhub.lake import layout
from medhub.lake.intake import ingest_paths
from medhub.store import open_store, ops

KEY = b"test-key-not-secret"


def _h(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:32]


def _walk_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v.startswith("Patient/"):
                node[k] = "Patient/" + _h(v[8:])
            else:
                _walk_refs(v)
    elif isinstance(node, list):
        for v in node:
            _walk_refs(v)


def hmac_gate(item: Item) -> Item:
    """A test gate: Patient.id and references to it become HMACs; names and identifiers dropped."""
    if isinstance(item, FhirItem):
        res = orjson.loads(orjson.dumps(item.resource))
        if res["resourceType"] == "Patient":
            res["id"] = _h(res["id"])
            for k in ("name", "telecom", "address", "identifier"):
                res.pop(k, None)
        _walk_refs(res)
        return FhirItem(item.source_file, res, item.line)
    if isinstance(item, DicomItem):
        ds = item.dataset
        ds.PatientID = _h(str(ds.get("PatientID", "")))
        ds.PatientName = "ANON"
        ds.remove_private_tags()
        return item
    if isinstance(item, BiosignalItem):
        return dataclasses.replace(
            item,
            patient={"code": _h(item.patient.get("code", "") or item.record_name)},
            record_name=_h(item.record_name),
            comments=[],
            recording={},
        )
    raise TypeError(type(item))


# -- sample inputs -----------------------------------------------------------------------------


def patient(pid: str, family: str = "Kim") -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": ["Minjun"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
    }


def observation(oid: str, pid: str, value: float = 120.0) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "meta": {"lastUpdated": "2024-01-02T03:04:05Z"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2024-01-01",
        "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org"},
    }


def write_ndjson(path: Path, resources: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


def write_bundle(path: Path, pid: str, family: str = "Park") -> Path:
    pu, ou = "urn:uuid:11111111-1111-1111-1111-111111111111", "urn:uuid:22222222-2222-2222-2222-222222222222"
    obs = observation("o-" + pid, "x")
    obs["subject"] = {"reference": pu}
    obs.pop("id")  # the reader takes the entry's uuid as the id
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": pu,
                "resource": patient(pid, family),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"fullUrl": ou, "resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    return path


def write_wfdb(folder: Path, name: str = "rec1") -> Path:
    import wfdb

    sig = np.stack([np.sin(np.linspace(0, 20, 2000)), np.cos(np.linspace(0, 20, 2000))], axis=1)
    wfdb.wrsamp(
        name,
        fs=500,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        p_signal=sig,
        fmt=["16", "16"],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        comments=["age: 61", "sex: M", "name: Lee Jiho"],
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


def write_edf(path: Path) -> Path:
    import pyedflib

    w = pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeader(
        0,
        {
            "label": "EEG Fp1",
            "dimension": "uV",
            "sample_frequency": 100,
            "physical_max": 100.0,
            "physical_min": -100.0,
            "digital_max": 32767,
            "digital_min": -32768,
        },
    )
    w.setPatientCode("MRN12345")
    w.setPatientName("Choi_Seoyeon")
    w.writeSamples([np.linspace(-50, 50, 1000)])
    w.close()
    return path


def lake_rows(settings: Settings, kind: str) -> list[dict]:
    files = list((settings.lake_dir / kind).rglob("*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    rows = con.execute("select * from read_parquet(?, union_by_name=true)", [[str(f) for f in files]])
    cols = [d[0] for d in rows.description]
    return [dict(zip(cols, r, strict=True)) for r in rows.fetchall()]


def quarantine_rows(settings: Settings) -> list[dict]:
    engine = open_store(settings.database_url)
    try:
        return ops.list_quarantine(engine)
    finally:
        engine.dispose()


# -- formats -----------------------------------------------------------------------------------


def test_fhir_ndjson_and_bundle_land_with_key_columns(settings: Settings, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    write_ndjson(inp / "Patient.ndjson", [patient("p1"), patient("p2")])
    write_ndjson(inp / "Observation.ndjson", [observation("o1", "p1"), observation("o2", "p2")])
    write_bundle(inp / "bundle.json", "p3")
    s = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)
    assert s.counts["Patient"].accepted == 3 and s.counts["Observation"].accepted == 3
    rows = lake_rows(settings, layout.FHIR)
    assert len(rows) == 6
    by_id = {r["id"]: r for r in rows}
    assert by_id[_h("p1")]["patient_ref"] == f"Patient/{_h('p1')}"
    assert by_id["o1"]["patient_ref"] == f"Patient/{_h('p1')}"
    assert by_id["o1"]["last_updated"] == "2024-01-02T03:04:05Z"
    # the bundle's urn:uuid reference was resolved to Patient/<id> before the gate pseudonymized it
    bundle_obs = by_id["22222222-2222-2222-2222-222222222222"]
    assert bundle_obs["patient_ref"] == f"Patient/{_h('p3')}"
    for r in rows:
        res = orjson.loads(r["resource"])
        assert r["content_hash"] == hashlib.sha256(r["resource"].encode()).hexdigest()
        assert res["id"] == r["id"] and r["source"] == "hosp-a"
    assert "Kim" not in str(rows) and "Park" not in str(rows)
    # readable by DuckDB through the layout's glob, partitioned by source and type
    con = duckdb.connect()
    n = con.execute(
        f"select count(*) from read_parquet('{layout.fhir_glob(settings.lake_dir)}', "
        "hive_partitioning=true) where resource_type='Observation'"
    ).fetchone()[0]
    assert n == 3


def test_dicom_lands_as_metadata_row_and_content_addressed_blob(settings: Settings, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), inp / name)
    s = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)
    assert s.counts["dicom"].accepted == 2
    rows = lake_rows(settings, layout.DICOM)
    assert {r["modality"] for r in rows} == {"CT", "MR"}
    for r in rows:
        blob = layout.blob_path(settings.lake_dir, r["blob_sha256"])
        data = blob.read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["blob_sha256"] and len(data) == r["blob_size"]
        ds = pydicom.dcmread(blob)
        assert str(ds.PatientName) == "ANON" and r["patient_ref"] == f"Patient/{ds.PatientID}"
        assert ds.SOPInstanceUID == r["sop_instance_uid"]
        assert "PixelData" in ds and orjson.loads(r["header"])["Manufacturer"]


def test_wfdb_and_edf_land_with_samples_gain_and_baseline(settings: Settings, tmp_path: Path) -> None:
    import wfdb

    inp = tmp_path / "in"
    inp.mkdir()
    hea = write_wfdb(inp)
    write_edf(inp / "eeg.edf")
    s = ingest_paths(settings, "hosp-b", [inp], gate=hmac_gate)
    assert s.counts["wfdb"].accepted == 1 and s.counts["edf"].accepted == 1, s.as_dict()
    assert s.files["accepted"] == 3  # header + .dat travel together, plus the EDF
    rows = {r["format"]: r for r in lake_rows(settings, layout.BIOSIGNAL)}
    import pyarrow.parquet as pq

    rec = wfdb.rdrecord(str(hea.with_suffix("")), physical=False)
    samples = pq.read_table(layout.blob_path(settings.lake_dir, rows["wfdb"]["samples_sha256"])).to_pylist()
    assert [c["name"] for c in samples] == ["I", "II"]
    assert samples[0]["gain"] == 200.0 and samples[0]["baseline"] == 0.0
    assert np.array_equal(np.array(samples[1]["samples"]), rec.d_signal[:, 1])
    edf = pq.read_table(layout.blob_path(settings.lake_dir, rows["edf"]["samples_sha256"])).to_pylist()[0]
    physical = (np.array(edf["samples"]) - edf["baseline"]) / edf["gain"]
    assert np.allclose(physical, np.linspace(-50, 50, 1000), atol=0.01)
    assert rows["edf"]["patient_ref"] == f"Patient/{_h('MRN12345')}"
    text = str(rows) + str(samples)
    assert "Choi" not in text and "Lee Jiho" not in text and "MRN12345" not in text


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    from medhub.ingest.fhir import read_json, read_ndjson

    p = tmp_path / "bom.ndjson"
    p.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(patient("a")) + b"\n" + orjson.dumps(patient("b")) + b"\n")
    assert [i.resource["id"] for i in read_ndjson(p)] == ["a", "b"]
    j = tmp_path / "bom.json"
    j.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(patient("c")))
    assert [i.resource["id"] for i in read_json(j)] == ["c"]
    assert sniff(p).format == "ndjson" and sniff(j).format == "json"


def test_detection_is_by_content_not_extension(tmp_path: Path) -> None:
    p = tmp_path / "export.txt"
    write_ndjson(p, [patient("a"), patient("b")])
    assert sniff(p).format == "ndjson"
    d = tmp_path / "image.bin"
    shutil.copy(get_testdata_file("CT_small.dcm"), d)
    assert sniff(d).format == "dicom"
    b = tmp_path / "b"
    write_bundle(b, "x")
    assert sniff(b).format == "json"


# -- bad input ---------------------------------------------------------------------------------


def test_bad_inputs_are_quarantined_with_reasons_and_the_batch_goes_on(
    settings: Settings, tmp_path: Path
) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    good = [patient("p1"), observation("o1", "p1")]
    lines = [orjson.dumps(r) for r in good]
    lines.insert(1, b'{"resourceType": "Observation", "id": "o2", ')  # invalid JSON, line 2
    lines.append(orjson.dumps({"resourceType": "Observation", "status": "final"}))  # no id, line 4
    lines.append(orjson.dumps({"id": "x9", "status": "final"}))  # no resourceType, line 5
    (inp / "mixed.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (inp / "truncated.dcm").write_bytes(ct[: len(ct) // 2])
    (inp / "notdicom.dcm").write_bytes(b"this is a text file, not an image\n" * 20)
    hea = write_wfdb(inp, "nosig")
    hea.with_suffix(".dat").unlink()
    (inp / "empty.ndjson").write_bytes(b"")
    write_ndjson(inp / "fine.ndjson", [patient("p7")])
    s = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)

    assert {r["id"] for r in lake_rows(settings, layout.FHIR)} == {_h("p1"), "o1", _h("p7")}
    q = {(Path(r["file"]).name, r["line"]): r for r in quarantine_rows(settings)}
    assert "invalid JSON" in q[("mixed.ndjson", 2)]["reason"]
    assert q[("mixed.ndjson", 4)]["reason"] == "Observation resource has no id"
    assert q[("mixed.ndjson", 5)]["reason"] == "resource has no resourceType"
    assert "truncated" in q[("truncated.dcm", None)]["reason"]
    assert "not DICOM" in q[("notdicom.dcm", None)]["reason"]
    assert "nosig.dat" in q[("nosig.hea", None)]["reason"] and "missing" in q[("nosig.hea", None)]["reason"]
    assert "zero-byte" in q[("empty.ndjson", None)]["reason"]
    for r in q.values():  # a copy of each bad file is kept for review
        assert r["stored_copy"] and Path(r["stored_copy"]).is_file()
        assert Path(r["stored_copy"]).is_relative_to(settings.quarantine_dir)
    assert s.quarantined == 7
    assert s.files["partial"] == 1 and s.files["accepted"] == 1


def test_json_document_errors_name_the_problem(settings: Settings, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "broken.json").write_bytes(b'{"resourceType": "Bundle", "entry": [')
    (inp / "noid.json").write_bytes(orjson.dumps({"resourceType": "Patient"}))
    ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)
    q = {Path(r["file"]).name: r["reason"] for r in quarantine_rows(settings)}
    assert q["broken.json"].startswith("invalid JSON")
    assert q["noid.json"] == "Patient resource has no id"


@pytest.mark.slow
def test_large_random_file_is_quarantined_in_bounded_memory(settings: Settings, tmp_path: Path) -> None:
    """50 MB of random bytes: detected as unknown from its first 4 KiB, hashed in 1 MiB pieces;
    measured in a child process, whose peak memory must not grow with the file."""
    import subprocess
    import sys

    big = tmp_path / "random.ndjson"
    with open(big, "wb") as f:
        for i in range(100):  # valid NDJSON at the start, so the reader really streams the rest
            f.write(orjson.dumps(patient(f"p{i}")) + b"\n")
        for _ in range(50):
            f.write(os.urandom(1 << 20))
    code = (
        "import re, sys; from medhub.config import load_settings; "
        "from medhub.lake.intake import ingest_paths; from test_ingest import hmac_gate; "
        "s = ingest_paths(load_settings(), 'hosp-a', [sys.argv[1]], gate=hmac_gate); "
        # VmHWM is this process image's own peak; ru_maxrss would carry the parent's peak across
        # fork and exec, so inside a long pytest run it measured pytest, not the ingestion.
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print(s.quarantined, hwm)"
    )
    env = {
        **os.environ,
        "MEDHUB_HOME": str(settings.home),
        "MEDHUB_KEY_DIR": str(settings.key_dir),
        "MEDHUB_LINKAGE_DIR": str(settings.linkage_dir),
        "PYTHONPATH": str(Path(__file__).parent),
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(big)], env=env, capture_output=True, text=True, check=True
    )
    quarantined, maxrss_kb = map(int, out.stdout.split())
    assert quarantined >= 1
    assert maxrss_kb < 400 * 1024  # the imports alone take ~200 MB; the 50 MB file is never held whole
    reasons = {r["reason"] for r in quarantine_rows(settings)}
    assert any("invalid JSON" in r for r in reasons)
    assert any("stopped reading after 100 bad items" in r for r in reasons)
    assert len(lake_rows(settings, layout.FHIR)) == 100


def test_items_held_by_the_gate_are_quarantined_for_review(settings: Settings, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), inp / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), inp / "mr.dcm")

    def holding_gate(item: Item) -> Item:
        if isinstance(item, DicomItem) and item.dataset.Modality == "CT":
            raise HeldForReview("burned-in text suspected")
        return hmac_gate(item)

    s = ingest_paths(settings, "hosp-a", [inp], gate=holding_gate)
    assert s.counts["dicom"].accepted == 1 and s.counts["dicom"].quarantined == 1
    (q,) = quarantine_rows(settings)
    assert q["kind"] == "held" and "burned-in text suspected" in q["reason"] and q["file"].endswith("ct.dcm")


# -- idempotence -------------------------------------------------------------------------------


def test_second_ingest_adds_nothing_and_same_resource_in_two_files_lands_once(
    settings: Settings, tmp_path: Path
) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    write_ndjson(inp / "a.ndjson", [patient("p1"), observation("o1", "p1")])
    write_ndjson(inp / "b.ndjson", [observation("o1", "p1"), observation("o2", "p1")])  # o1 again
    shutil.copy(get_testdata_file("CT_small.dcm"), inp / "ct.dcm")
    s1 = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)
    assert s1.counts["Observation"].accepted == 2 and s1.counts["Observation"].duplicate == 1
    before = sorted(p.relative_to(settings.lake_dir) for p in settings.lake_dir.rglob("*") if p.is_file())
    s2 = ingest_paths(settings, "hosp-a", [inp], gate=hmac_gate)
    assert s2.accepted == 0 and s2.files == {"duplicate": 3}
    after = sorted(p.relative_to(settings.lake_dir) for p in settings.lake_dir.rglob("*") if p.is_file())
    assert before == after
    # a new file holding already-landed resources (same content) adds no rows either
    write_ndjson(inp / "c.ndjson", [patient("p1"), observation("o2", "p1"), observation("o3", "p1")])
    s3 = ingest_paths(settings, "hosp-a", [inp / "c.ndjson"], gate=hmac_gate)
    assert s3.accepted == 1 and s3.duplicate == 2
    assert len(lake_rows(settings, layout.FHIR)) == 4  # p1, o1, o2, o3
    # the same file for another source is that source's data
    s4 = ingest_paths(settings, "hosp-b", [inp / "a.ndjson"], gate=hmac_gate)
    assert s4.accepted == 2


def test_reader_and_writer_failures_are_quarantined_and_the_batch_goes_on(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medhub.ingest import pipeline

    inp = tmp_path / "in"
    inp.mkdir()
    write_ndjson(inp / "a.ndjson", [patient("p1"), observation("o1", "p1")])
    write_ndjson(inp / "b.ndjson", [patient("p2")])

    def odd_gate(item: Item) -> Item:
        item = hmac_gate(item)
        if isinstance(item, FhirItem) and item.resource["resourceType"] == "Observation":
            item.resource["valueSet"] = {1, 2}  # not JSON: the writer cannot serialize it
        return item

    real = pipeline.READERS["ndjson"]

    def flaky_reader(path: Path):
        if path.name == "b.ndjson":
            raise RuntimeError("disk on fire")
        yield from real(path)

    monkeypatch.setitem(pipeline.READERS, "ndjson", flaky_reader)
    s = ingest_paths(settings, "hosp-a", [inp], gate=odd_gate)
    assert s.counts["Patient"].accepted == 1
    q = {Path(r["file"]).name: r["reason"] for r in quarantine_rows(settings)}
    assert q["a.ndjson"].startswith("could not be written to the lake (TypeError")
    assert q["b.ndjson"] == "the reader failed (RuntimeError: disk on fire)"


def test_dicom_pixel_check_by_tag_reads_what_keyword_lookup_reads() -> None:
    """The reader's truncation check looks attributes up by tag: the same verdict as by keyword, on
    pydicom's test files whole and cut short."""
    import io
    import warnings

    from pydicom.encaps import generate_fragments

    from medhub.ingest import dicom as reader

    def by_keyword(ds: pydicom.Dataset) -> str | None:  # the check as it read before (keywords)
        has_image = "Rows" in ds and "Columns" in ds and "BitsAllocated" in ds
        if "PixelData" not in ds:
            return "missing" if has_image and "SamplesPerPixel" in ds else None
        value = ds.PixelData
        if value is None:
            return "empty"
        ts = getattr(ds.file_meta, "TransferSyntaxUID", None) if ds.file_meta is not None else None
        if ts is not None and ts.is_compressed:
            try:
                n = sum(1 for _ in generate_fragments(value))
            except Exception:  # noqa: BLE001
                return "damaged"
            return None if n else "no fragments"
        if not has_image:
            return None
        bits, frames = int(ds.BitsAllocated), int(ds.get("NumberOfFrames", 1) or 1)
        pixels = int(ds.Rows) * int(ds.Columns) * frames * int(ds.get("SamplesPerPixel", 1) or 1)
        expected = (pixels + 7) // 8 if bits == 1 else pixels * bits // 8
        return "short" if len(value) < expected else None

    def verdict(ds: pydicom.Dataset, fn) -> str | None:  # noqa: ANN001
        try:
            problem = fn(ds)
        except Exception as exc:  # noqa: BLE001
            return type(exc).__name__
        return None if problem is None else problem.split()[0] if fn is by_keyword else "problem"

    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in sorted(Path(get_testdata_file("CT_small.dcm")).parent.glob("*.dcm")):
            data = f.read_bytes()
            for cut in (data, data[: len(data) * 3 // 4]):
                try:
                    a, b = (pydicom.dcmread(io.BytesIO(cut), force=True) for _ in range(2))
                except Exception:  # noqa: BLE001 - unreadable: the reader rejects it before the check
                    continue
                old, new = verdict(a, by_keyword), verdict(b, reader._pixel_problem)
                assert (old is None) == (new is None), (f.name, len(cut), old, new)
                seen.add(old is None)
    assert seen == {True, False}
    item = next(reader.read_dicom(Path(get_testdata_file("MR_small_bigendian.dcm"))))
    rows = item.dataset.get_item(0x00280010)
    assert type(rows).__name__ == "RawDataElement"  # read from its bytes, left raw for the encoder
    assert item.dataset.Rows == 64
