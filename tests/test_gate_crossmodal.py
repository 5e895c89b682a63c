"""One patient across FHIR, DICOM and biosignals: one pseudonym and one date shift, so intervals survive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from deid_fixtures import planted_dataset
from medhub.config import Settings
from medhub.ingest.biosignal import read_wfdb
from medhub.ingest.records import DicomItem, FhirItem
from medhub.privacy.gate import make_gate
from medhub.synth.ecg import write_wfdb
from test_deid_biosignal import one, recording

MRN = "MRN0042"


def test_intervals_survive_across_modalities(settings: Settings, tmp_path: Path) -> None:
    gate = make_gate(settings, "hosp-a")
    patient = gate(FhirItem("p", {"resourceType": "Patient", "id": MRN, "birthDate": "1960-05-17"})).resource
    obs = gate(
        FhirItem(
            "o",
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"text": "hr"},
                "subject": {"reference": f"Patient/{MRN}"},
                "effectiveDateTime": "2024-02-20T09:00:00+09:00",
            },
        )
    ).resource
    ds, _ = planted_dataset(mrn=MRN, study_date="20240301")
    image = gate(DicomItem("x.dcm", ds)).dataset
    write_wfdb(tmp_path, recording(mrn=MRN))  # recorded 2024-03-01 10:05
    ecg = gate(one(list(read_wfdb(tmp_path / f"ecg_{MRN}_20240301.hea"))))

    assert patient["id"] == image.PatientID == ecg.comments[0].split(": ")[1]
    born = dt.date.fromisoformat(patient["birthDate"])
    seen = dt.datetime.fromisoformat(obs["effectiveDateTime"]).date()
    imaged = dt.datetime.strptime(image.StudyDate, "%Y%m%d").date()
    recorded = ecg.start.date()
    assert (imaged - seen).days == 10  # 2024-02-20 -> 2024-03-01
    assert recorded == imaged  # ECG and X-ray on the same day
    assert (imaged - born) == (dt.date(2024, 3, 1) - dt.date(1960, 5, 17))
    assert imaged != dt.date(2024, 3, 1)


def test_two_sources_differ_for_the_same_local_id(settings: Settings) -> None:
    a = make_gate(settings, "hosp-a")
    b = make_gate(settings, "hosp-b")
    da, _ = planted_dataset(mrn=MRN)
    db, _ = planted_dataset(mrn=MRN)
    assert a(DicomItem("x", da)).dataset.PatientID != b(DicomItem("x", db)).dataset.PatientID


def test_keys_only_in_key_dir(settings: Settings) -> None:
    gate = make_gate(settings, "hosp-a")
    gate(DicomItem("x", planted_dataset()[0]))
    gate(FhirItem("p", {"resourceType": "Patient", "id": MRN}))
    assert sorted(p.name for p in (settings.key_dir / "hosp-a").iterdir()) == [
        "date-shift.key",
        "pseudonym.key",
        "uid.key",
    ]
    keys = [p.read_bytes() for p in settings.key_dir.rglob("*.key")]
    for f in settings.home.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not any(k in data for k in keys), f
