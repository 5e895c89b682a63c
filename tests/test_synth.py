"""Synthetic hospitals: determinism, valid DICOM/WFDB/EDF+/FHIR, references that resolve,
multi-hospital patients with discrepancies, and an answer key that lists every identifier written."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from typer.testing import CliRunner

from medhub.synth import generate, read_identifiers

N_PATIENTS = 40

# Type 1 (present, non-empty) and Type 2 (present) attributes of the modules each IOD uses
COMMON_T1 = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "Modality",
    "SeriesInstanceUID",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelData",
]
COMMON_T2 = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "Manufacturer",
    "InstanceNumber",
    "PatientOrientation",
    "ContentDate",
    "ContentTime",
]
DX_T1 = [
    "PresentationIntentType",
    "ImageType",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "PresentationLUTShape",
    "LossyImageCompression",
    "BurnedInAnnotation",
    "ImageLaterality",
    "ImagerPixelSpacing",
    "FrameOfReferenceUID",
    "WindowCenter",
    "WindowWidth",
]
DX_T2 = ["AnatomicRegionSequence", "DetectorType", "AcquisitionContextSequence", "PositionReferenceIndicator"]
CR_T2 = ["BodyPartExamined", "ViewPosition"]


@pytest.fixture(scope="module")
def synth_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "out"
    generate(out, hospitals=3, patients=N_PATIENTS, seed=7)
    return out


@pytest.fixture(scope="module")
def identities(synth_out: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line) for line in (synth_out / "truth" / "identities.jsonl").read_bytes().splitlines()
    ]


@pytest.fixture(scope="module")
def identifiers(synth_out: Path) -> set[str]:
    return read_identifiers(synth_out)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _resources(out: Path, source_id: str) -> list[dict[str, Any]]:
    """Every resource a hospital exported, from NDJSON or from its Bundles."""
    base = out / source_id / "fhir"
    res: list[dict[str, Any]] = []
    for f in sorted(base.glob("*.ndjson")):
        for line in f.read_bytes().splitlines():
            res.append(orjson.loads(line))
    for f in sorted((base / "bundles").glob("*.json")):
        res.extend(e["resource"] for e in orjson.loads(f.read_bytes())["entry"])
    return res


def _references(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        out = [obj["reference"]] if isinstance(obj.get("reference"), str) else []
        for v in obj.values():
            out.extend(_references(v))
        return out
    if isinstance(obj, list):
        return [r for v in obj for r in _references(v)]
    return []


def test_manifest_and_layout(synth_out: Path) -> None:
    manifest = orjson.loads((synth_out / "manifest.json").read_bytes())
    assert manifest["seed"] == 7
    hs = manifest["hospitals"]
    assert [h["source_id"] for h in hs] == ["hospital-a", "hospital-b", "hospital-c"]
    assert [h["fhir"] for h in hs].count("bundle") == 1
    assert [h["biosignal"] for h in hs].count("edf") == 1
    for h in hs:
        base = synth_out / h["source_id"]
        if h["fhir"] == "ndjson":
            assert (base / "fhir" / "Patient.ndjson").exists()
        else:
            assert list((base / "fhir" / "bundles").glob("*.json"))
        assert list((base / "dicom").glob("*/*.dcm"))
        ext = "*.hea" if h["biosignal"] == "wfdb" else "*.edf"
        assert list((base / "ecg").glob(ext))


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", hospitals=3, patients=15, seed=3)
    generate(tmp_path / "b", hospitals=3, patients=15, seed=3)
    generate(tmp_path / "c", hospitals=3, patients=15, seed=4)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a != c
    assert a["truth/identities.jsonl"] != c["truth/identities.jsonl"]


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(tmp_path / "x", patients=2)
    with pytest.raises(FileExistsError, match="no synth manifest"):
        generate(tmp_path / "x", patients=2, overwrite=True)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
    with pytest.raises(FileExistsError, match="is a file"):
        generate(tmp_path / "x" / "keep.txt", patients=2)
    with pytest.raises(ValueError, match="patients"):
        generate(tmp_path / "y", patients=0)
    with pytest.raises(ValueError, match="hospitals"):
        generate(tmp_path / "z", hospitals=27, patients=2)


def test_dicom_valid_for_its_iod(synth_out: Path, identities: list[dict[str, Any]]) -> None:
    mrns = defaultdict(set)
    for r in identities:
        mrns[r["source_id"]].add(r["mrn"])
    files = sorted(synth_out.glob("*/dicom/*/*.dcm"))
    assert len(files) >= 5
    modalities = Counter()
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        for kw in COMMON_T1:
            assert kw in ds and ds[kw].value not in (None, ""), (f, kw)
        for kw in COMMON_T2:
            assert kw in ds, (f, kw)
        if ds.Modality == "DX":
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"
            for kw in DX_T1:
                assert kw in ds and ds[kw].value not in (None, ""), (f, kw)
            for kw in DX_T2:
                assert kw in ds, (f, kw)
            assert ds.PhotometricInterpretation == "MONOCHROME2"
        else:
            assert ds.Modality == "CR" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1"
            for kw in CR_T2:
                assert kw in ds, (f, kw)
        modalities[ds.Modality] += 1
        assert ds.HighBit == ds.BitsStored - 1
        assert ds.pixel_array.shape == (256, 256) and int(ds.pixel_array.max()) < 4096
        assert ds.BurnedInAnnotation in ("YES", "NO")
        source = f.relative_to(synth_out).parts[0]
        assert ds.PatientID in mrns[source]
        assert f.parent.name == ds.StudyInstanceUID and f.stem == ds.SOPInstanceUID
        assert ds.RequestAttributesSequence[0].AccessionNumber == ds.AccessionNumber
        if "ISO_IR 192" in (ds.get("SpecificCharacterSet") or ""):
            assert re.search("[가-힣]", str(ds.InstitutionName))
    assert set(modalities) == {"DX", "CR"}


def test_every_dicom_identifier_is_in_the_answer_key(synth_out: Path, identifiers: set[str]) -> None:
    hangul_names = 0
    for f in sorted(synth_out.glob("*/dicom/*/*.dcm")):
        ds = pydicom.dcmread(f)
        name = str(ds.PatientName)
        assert name in identifiers
        for part in name.split("="):
            assert part in identifiers
        hangul_names += bool(re.search("[가-힣]", name))
        assert ds.PatientID in identifiers
        assert ds.AccessionNumber in identifiers
        for kw in ("ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName"):
            assert str(ds[kw].value) in identifiers, kw
        assert ds.InstitutionName in identifiers and ds.InstitutionAddress in identifiers
        if "OtherPatientIDsSequence" in ds:
            assert ds.OtherPatientIDsSequence[0].PatientID in identifiers
        block = ds.private_block(0x0029, "KRPACS_PATIENT_INFO")
        assert block[0x01].value in identifiers
        if "ImageComments" in ds:
            assert any(i in ds.ImageComments for i in identifiers if " " in i and i.isupper())
        if "PatientAddress" in ds:
            assert ds.PatientAddress in identifiers and ds.PatientTelephoneNumbers in identifiers
    assert hangul_names > 0


def test_imaging_study_uids_match_the_dicom_written(synth_out: Path) -> None:
    for source in ("hospital-a", "hospital-b", "hospital-c"):
        written = set()
        for f in (synth_out / source / "dicom").glob("*/*.dcm"):
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            written.add(
                (
                    ds.StudyInstanceUID,
                    ds.SeriesInstanceUID,
                    ds.SOPInstanceUID,
                    ds.SOPClassUID,
                    ds.AccessionNumber,
                    ds.PatientID,
                )
            )
        declared = set()
        for r in _resources(synth_out, source):
            if r["resourceType"] != "ImagingStudy":
                continue
            study_uid = r["identifier"][0]["value"].removeprefix("urn:oid:")
            accession = r["identifier"][1]["value"]
            series = r["series"][0]
            inst = series["instance"][0]
            patient = r["subject"]["reference"].split("/")[-1]
            declared.add(
                (
                    study_uid,
                    series["uid"],
                    inst["uid"],
                    inst["sopClass"]["code"].removeprefix("urn:oid:"),
                    accession,
                    patient,
                )
            )
        if source == "hospital-b":  # bundles reference the patient by urn:uuid; compare without it
            written = {w[:5] for w in written}
            declared = {d[:5] for d in declared}
        assert declared == written and written


def test_wfdb_records_read_back(synth_out: Path, identifiers: set[str]) -> None:
    import wfdb

    heas = sorted(synth_out.glob("*/ecg/*.hea"))
    assert heas
    for hea in heas:
        rec = wfdb.rdrecord(str(hea.with_suffix("")))
        assert rec.fs == 500 and rec.sig_len == 5000 and rec.n_sig == 12
        assert rec.sig_name[:3] == ["I", "II", "III"] and rec.units[0] == "mV"
        comments = dict(c.split(": ", 1) for c in rec.comments)
        assert {"Patient", "MRN", "Age", "Sex", "Date"} <= set(comments)
        assert comments["Patient"] in identifiers and comments["MRN"] in identifiers
        assert comments["Technician"] in identifiers
        assert rec.base_date.isoformat() == comments["Date"]
        # a plausible ECG: R peaks in lead II around 1 mV, einthoven's law holds
        ii = rec.p_signal[:, 1]
        assert 0.6 < ii.max() < 2.0
        assert abs(rec.p_signal[:, 2] - (rec.p_signal[:, 1] - rec.p_signal[:, 0])).max() < 0.05


def test_edf_records_read_back(synth_out: Path, identifiers: set[str]) -> None:
    import pyedflib

    edfs = sorted(synth_out.glob("*/ecg/*.edf"))
    assert edfs
    for path in edfs:
        with pyedflib.EdfReader(str(path)) as f:
            assert f.signals_in_file == 12
            assert f.getSampleFrequency(0) == 500
            assert f.getNSamples()[0] == 5000
            header = f.getHeader()
            assert header["patientname"] in identifiers  # "KIM MINJUN"
            assert header["patientname"].replace(" ", "_") in identifiers  # as stored: KIM_MINJUN
            assert header["patientcode"] in identifiers
            assert header["birthdate"]
            onsets, _, texts = f.readAnnotations()
            assert any(header["patientname"] in t for t in texts)
        raw = path.read_bytes()[:256].decode("ascii")
        assert header["patientname"].replace(" ", "_") in raw


def test_fhir_parses_and_references_resolve(synth_out: Path) -> None:
    for source in ("hospital-a", "hospital-c"):
        res = _resources(synth_out, source)
        keys = {f"{r['resourceType']}/{r['id']}" for r in res}
        assert len(keys) == len(res)  # ids unique per type
        types = Counter(r["resourceType"] for r in res)
        assert {
            "Patient",
            "Encounter",
            "Condition",
            "Observation",
            "MedicationRequest",
            "Procedure",
            "DiagnosticReport",
            "ImagingStudy",
        } <= set(types)
        for r in res:
            for ref in _references(r):
                assert ref in keys, (source, r["resourceType"], ref)
            if r["resourceType"] == "Observation":
                assert r["code"]["coding"][0]["system"] == "http://loinc.org"
                for q in [r.get("valueQuantity")] + [c["valueQuantity"] for c in r.get("component", [])]:
                    if q:
                        assert q["system"] == "http://unitsofmeasure.org" and q["code"]


def test_bundles_are_transactions_with_urn_uuids(synth_out: Path) -> None:
    bundles = sorted((synth_out / "hospital-b" / "fhir" / "bundles").glob("*.json"))
    assert bundles
    for f in bundles:
        b = orjson.loads(f.read_bytes())
        assert b["resourceType"] == "Bundle" and b["type"] == "transaction"
        full_urls = {e["fullUrl"] for e in b["entry"]}
        assert all(u.startswith("urn:uuid:") for u in full_urls)
        assert sum(e["resource"]["resourceType"] == "Patient" for e in b["entry"]) == 1
        for e in b["entry"]:
            assert e["request"]["method"] == "PUT"
            assert e["request"]["url"] == f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for ref in _references(e["resource"]):
                assert ref in full_urls


def test_patient_id_is_the_mrn_and_identifiers(synth_out: Path, identities: list[dict[str, Any]]) -> None:
    by_key = {(r["source_id"], r["mrn"]): r for r in identities}
    for source in ("hospital-a", "hospital-b", "hospital-c"):
        patients = [r for r in _resources(synth_out, source) if r["resourceType"] == "Patient"]
        assert patients
        for p in patients:
            truth = by_key[(source, p["id"])]
            assert truth["patient_id"] == p["id"]
            mr = [i for i in p["identifier"] if i["type"]["coding"][0]["code"] == "MR"]
            assert mr[0]["value"] == p["id"]
            rrn = [i["value"] for i in p["identifier"] if i["system"].endswith("/rrn")]
            assert rrn == ([truth["rrn"]] if truth["rrn"] else [])
            assert p["name"][0]["text"] == truth["family_name"] + truth["given_name"]
            assert p["telecom"][0]["value"] == truth["phone"]
            assert p["address"][0]["text"] == truth["address"]
            assert p["birthDate"] == truth["birth_date"]


def test_every_fhir_identifier_is_in_the_answer_key(synth_out: Path) -> None:
    tsv = set(
        read_identifiers(
            synth_out,
            kinds={
                "name",
                "given_name",
                "family_name",
                "rrn",
                "phone",
                "address",
                "mrn",
                "accession",
                "staff",
                "institution",
                "postcode",
                "birth_date",
            },
        )
    )
    for source in ("hospital-a", "hospital-b", "hospital-c"):
        for r in _resources(synth_out, source):
            if r["resourceType"] == "Patient":
                for n in r["name"]:
                    assert n["text"] in tsv and n["family"] in tsv and n["given"][0] in tsv
                assert all(i["value"] in tsv for i in r["identifier"])
                assert r["address"][0]["postalCode"] in tsv
            for path in ("participant", "requester", "resultsInterpreter", "referrer", "performer"):
                for v in _displays(r.get(path)):
                    assert v in tsv, (r["resourceType"], path, v)
            if "serviceProvider" in r:
                assert r["serviceProvider"]["display"] in tsv


def _displays(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        out = [obj["display"]] if "display" in obj and "reference" not in obj and "system" not in obj else []
        for k, v in obj.items():
            if k != "type":
                out.extend(_displays(v))
        return out
    if isinstance(obj, list):
        return [d for v in obj for d in _displays(v)]
    return []


def test_diagnoses_drive_labs_and_medications(tmp_path: Path) -> None:
    out = tmp_path / "clin"
    generate(out, hospitals=1, patients=150, seed=21)
    res = _resources(out, "hospital-a")
    by_patient: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in res:
        if r["resourceType"] == "Patient":
            continue
        pid = r["subject"]["reference"].split("/")[1]
        by_patient[pid][r["resourceType"]].append(r)
    checked = Counter()
    for items in by_patient.values():
        codes = {c["code"]["coding"][0]["code"] for c in items["Condition"]}
        obs = defaultdict(list)
        for o in items["Observation"]:
            if "valueQuantity" in o:
                obs[o["code"]["coding"][0]["code"]].append(o["valueQuantity"]["value"])
        drugs = {m["medicationCodeableConcept"]["coding"][0]["code"] for m in items["MedicationRequest"]}
        if "44054006" in codes:  # diabetes: high HbA1c, metformin
            assert max(obs["4548-4"]) >= 6.5 and "A10BA02" in drugs
            checked["diabetes"] += 1
        elif obs["4548-4"]:
            assert max(obs["4548-4"]) < 6.5
        if "433144002" in codes:  # CKD stage 3: eGFR 30-59
            assert all(30 <= v < 60 for v in obs["98979-8"]) and max(obs["2160-0"]) > 1.0
            checked["ckd"] += 1
        if "233604007" in codes:  # pneumonia: CRP, WBC up, a chest X-ray, an antibiotic
            assert max(obs["1988-5"]) > 20 and max(obs["6690-2"]) > 10
            assert items["ImagingStudy"] and "J01CR02" in drugs
            checked["pneumonia"] += 1
    assert checked["diabetes"] > 3 and checked["pneumonia"] > 3


def test_multi_hospital_patients_with_discrepancies(identities: list[dict[str, Any]]) -> None:
    by_person = defaultdict(list)
    for r in identities:
        by_person[r["person_id"]].append(r)
    assert len(by_person) == N_PATIENTS
    multi = [v for v in by_person.values() if len(v) > 1]
    assert 0.15 <= len(multi) / N_PATIENTS <= 0.5
    assert all(len({r["source_id"] for r in v}) == len(v) for v in multi)
    fields = ("given_name", "given_name_roman", "phone", "address", "birth_date", "rrn")
    differing = [v for v in multi if any(len({r[f] for r in v}) > 1 for f in fields)]
    assert differing  # some records of the same person disagree


def test_discrepancies_at_scale(tmp_path: Path) -> None:
    generate(tmp_path / "s", hospitals=3, patients=200, seed=5)
    rows = [
        orjson.loads(x) for x in (tmp_path / "s" / "truth" / "identities.jsonl").read_bytes().splitlines()
    ]
    by_person = defaultdict(list)
    for r in rows:
        by_person[r["person_id"]].append(r)
    multi = [v for v in by_person.values() if len(v) > 1]
    changed = Counter(
        f
        for v in multi
        for f in ("given_name_roman", "phone", "address", "birth_date")
        if len({r[f] for r in v}) > 1
    )
    assert len(changed) >= 3


def test_identifiers_txt_is_distinctive_and_complete(
    synth_out: Path, identities: list[dict[str, Any]], identifiers: set[str]
) -> None:
    for r in identities:
        assert r["mrn"] in identifiers and r["phone"] in identifiers and r["address"] in identifiers
        if r["rrn"]:
            assert r["rrn"] in identifiers
        for n in r["names_written"]:
            if n in (r["given_name"], r["given_name_roman"]):
                assert n not in identifiers  # a bare given name identifies no one, and matches by chance
            else:
                assert n in identifiers
        assert all(a in identifiers for a in r["accession_numbers"])
    assert all(len(i) >= 5 or len(re.findall("[가-힣]", i)) >= 2 for i in identifiers)
    assert "김" not in identifiers and "Kim" not in identifiers


def test_cli_synth(tmp_path: Path) -> None:
    from medhub.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app, ["synth", "--out", str(out), "--hospitals", "2", "--patients", "6", "--seed", "9"]
    )
    assert result.exit_code == 0, result.output
    assert "hospital-b" in result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["seed"] == 9 and len(manifest["hospitals"]) == 2
    assert manifest["hospitals"][1]["fhir"] == "bundle" and manifest["hospitals"][1]["biosignal"] == "edf"
    again = runner.invoke(app, ["synth", "--out", str(out), "--patients", "6"])
    assert again.exit_code == 2 and "not empty" in again.output
    forced = runner.invoke(app, ["synth", "--out", str(out), "--patients", "6", "--force"])
    assert forced.exit_code == 0, forced.output


def test_dciodvfy_finds_no_errors(synth_out: Path) -> None:
    """dicom3tools' IOD validator, where it is installed (apt-get install dicom3tools)."""
    import shutil
    import subprocess

    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; the attribute tables still ran")
    for f in sorted(synth_out.glob("*/dicom/*/*.dcm")):
        result = subprocess.run([tool, str(f)], capture_output=True, text=True, check=False)
        errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
        assert not errors, (f, errors)


def test_staff_names_never_overlap_patient_names(synth_out: Path) -> None:
    """A scan for patient names (kind "name") must not match a doctor's name kept in the lake."""
    names = read_identifiers(synth_out, kinds={"name"})
    staff = read_identifiers(synth_out, kinds={"staff"})
    assert names and staff
    for s in staff:
        assert not any(n in s or s in n for n in names), s
    assert not read_identifiers(synth_out, kinds={"given_name"}) & read_identifiers(synth_out)
