"""The gate checks a DICOM header's free text against what the same source already sent for the
patient in FHIR (the romanized name a Hangul-only DICOM header does not carry)."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medhub.config import Settings
from medhub.ingest.records import DicomItem, FhirItem
from medhub.privacy.gate import make_gate


def _dx(patient_id: str, hangul_name: str, description: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "DX"
    ds.BurnedInAnnotation = "NO"
    ds.PatientID = patient_id
    ds.PatientName = hangul_name
    ds.StudyDescription = description
    return ds


def test_romanized_name_known_from_fhir_is_removed_from_dicom_free_text(settings: Settings) -> None:
    gate = make_gate(settings, "hospital-x")
    patient = {
        "resourceType": "Patient",
        "id": "A1234567",
        "name": [
            {"family": "노", "given": ["현숙"]},
            {"family": "NOH", "given": ["HYEONSUK"]},
            {"use": "nickname", "given": ["Jenny"]},
        ],
    }
    gate(FhirItem("Patient.ndjson", patient, 1))
    out = gate(DicomItem("a.dcm", _dx("A1234567", "노현숙", "CHEST PA NOH HYEONSUK (JENNY)")))
    assert "HYEONSUK" not in str(out.dataset.get("StudyDescription", ""))
    assert "JENNY" not in str(out.dataset.get("StudyDescription", ""))
    assert "노현숙" not in str(out.dataset.get("PatientName", ""))


def test_without_the_fhir_patient_only_the_romanization_is_known(settings: Settings) -> None:
    """The check works by knowledge, not by luck: without the FHIR Patient, the gate still derives
    the romanized spelling of the Hangul name (Revised Romanization and the usual surname forms), but
    it cannot know a name written nowhere in the header (so the test above can fail)."""
    gate = make_gate(settings, "hospital-y")
    out = gate(DicomItem("a.dcm", _dx("B7654321", "노현숙", "CHEST PA NOH HYEONSUK (JENNY)")))
    assert str(out.dataset.get("StudyDescription", "")) == "CHEST PA *** *** (JENNY)"
