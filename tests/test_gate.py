"""The privacy gate: identifiers of each modality become keyed pseudonyms, consistently per source."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medhub.config import Settings
from medhub.ingest.records import BiosignalItem, Channel, DicomItem, FhirItem
from medhub.privacy.gate import make_gate

MRN = "MRN0042"
NAME = "홍길동"


def patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": MRN,
        "identifier": [{"system": "urn:kr:rrn", "value": "900101-1234567"}],
        "name": [{"family": "홍", "given": ["길동"], "text": NAME}],
        "telecom": [{"system": "phone", "value": "010-1234-5678"}],
        "address": [{"text": "서울특별시 종로구 세종대로 1", "state": "서울특별시", "postalCode": "03154"}],
        "birthDate": "1960-05-17",
    }


def observation() -> dict:
    return {
        "resourceType": "Observation",
        "id": "obs1",
        "status": "final",
        "code": {"text": "heart rate"},
        "subject": {"reference": f"Patient/{MRN}"},
        "effectiveDateTime": "2024-03-01T10:00:00+09:00",
    }


def dicom_item() -> DicomItem:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.BurnedInAnnotation = "NO"
    ds.PatientID = MRN
    ds.PatientName = "HONG^GILDONG"
    ds.StudyDate = "20240301"
    return DicomItem("x.dcm", ds)


def ecg_item() -> BiosignalItem:
    return BiosignalItem(
        source_file="ecg.hea",
        format="wfdb",
        record_name=f"ecg_{MRN}",
        start=datetime(2024, 3, 1, 10, 5),
        channels=[Channel("I", "mV", 500.0, 200.0, 0.0, 10)],
        samples=[np.zeros(10, dtype=np.int16)],
        comments=[f"MRN: {MRN}", f"Name: {NAME}", "age: 63", "sex: M"],
    )


def test_fhir_patient_and_references_pseudonymized(settings: Settings) -> None:
    gate = make_gate(settings, "hosp-a")
    p = gate(FhirItem("p.ndjson", patient())).resource
    o = gate(FhirItem("o.ndjson", observation())).resource
    text = json.dumps([p, o], ensure_ascii=False)
    for ident in (MRN, NAME, "홍", "길동", "900101-1234567", "010-1234-5678", "세종대로"):
        assert ident not in text
    assert o["subject"]["reference"] == f"Patient/{p['id']}"


def test_same_patient_same_pseudonym_across_modalities(settings: Settings) -> None:
    gate = make_gate(settings, "hosp-a")
    p = gate(FhirItem("p.ndjson", patient())).resource
    d = gate(dicom_item()).dataset
    e = gate(ecg_item())
    assert d.PatientID == p["id"]
    assert str(d.PatientName) != "HONG^GILDONG"
    assert "HONG" not in str(d.PatientName)
    assert MRN not in e.record_name
    assert not any(MRN in c or NAME in c for c in e.comments)
    assert any(p["id"] in c for c in e.comments)


def test_two_sources_pseudonyms_differ(settings: Settings) -> None:
    a = make_gate(settings, "hosp-a")(FhirItem("p", patient())).resource
    b = make_gate(settings, "hosp-b")(FhirItem("p", patient())).resource
    assert a["id"] != b["id"]
    assert a["identifier"][0]["value"] != b["identifier"][0]["value"]


def test_gate_keys_stay_out_of_home(settings: Settings) -> None:
    make_gate(settings, "hosp-a")(FhirItem("p", patient()))
    assert not any(p.suffix == ".key" for p in settings.home.rglob("*"))
    assert list(settings.key_dir.rglob("*.key"))
