"""What the lake keeps of one gated FHIR resource: its row's values (compiled with mypyc, see
`medhub._native`: this runs once per resource ingested).

`fhir_row(resource)` gives the resource's JSON as stored, its sha256 (the row's content hash) and
the key columns views and readers filter on: type, id, the patient it is about, lastUpdated.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

_PATIENT_KEYS: Final = ("subject", "patient", "beneficiary")


def patient_ref(resource: dict[str, Any]) -> str | None:
    """`Patient/<id>` for a Patient, else the Patient reference in subject/patient/beneficiary."""
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource['id']}"
    for k in _PATIENT_KEYS:
        v = resource.get(k)
        if isinstance(v, dict):
            ref = v.get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                return ref
    return None


def fhir_row(resource: dict[str, Any]) -> tuple[str, bytes, bytes, str, str | None, str | None]:
    """(resourceType, the JSON stored, its sha256 digest, id, patient reference, meta.lastUpdated)."""
    text: bytes = orjson.dumps(resource)
    meta = resource.get("meta")
    last = meta.get("lastUpdated") if type(meta) is dict else None
    return (
        str(resource["resourceType"]),
        text,
        hashlib.sha256(text).digest(),
        str(resource["id"]),
        patient_ref(resource),
        last if isinstance(last, str) else None,
    )
