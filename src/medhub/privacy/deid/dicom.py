"""De-identification of one DICOM dataset (first version: patient identity pseudonymized)."""

from __future__ import annotations

import pydicom

from medhub.privacy.deid.common import Policy, SourceSecrets


def deid_dataset(ds: pydicom.Dataset, secrets: SourceSecrets, policy: Policy) -> pydicom.Dataset:
    local = str(ds.get("PatientID", "") or "")
    name = str(ds.get("PatientName", ""))
    pseudo = secrets.patient(local) if local else secrets.pseudonym(name, "patient-name")
    ds.PatientID = pseudo
    ds.PatientName = pseudo
    for kw in (
        "OtherPatientIDs",
        "OtherPatientNames",
        "OtherPatientIDsSequence",
        "PatientBirthName",
        "PatientMotherBirthName",
        "PatientAddress",
        "PatientTelephoneNumbers",
    ):
        if kw in ds:
            delattr(ds, kw)
    ds.PatientIdentityRemoved = "YES"
    return ds
