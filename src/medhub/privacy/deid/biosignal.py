"""De-identification of one biosignal record (WFDB or EDF+) (first version: identity pseudonymized)."""

from __future__ import annotations

import dataclasses
import re

from medhub.ingest.records import BiosignalItem
from medhub.privacy.deid.common import Policy, SourceSecrets

_KV = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _/().-]{0,40}?)\s*[:=]\s*(.*)$")
_ID_KEYS = {"mrn", "patient id", "patient_id", "patientid", "id", "subject", "subject id", "subject_id"}
_KEEP_KEYS = {"age", "sex", "gender"}


def patient_local_id(item: BiosignalItem) -> str | None:
    if item.format == "edf":
        code = (item.patient.get("code") or "").strip()
        return code if code and code.upper() != "X" else None
    for c in item.comments:
        m = _KV.match(c)
        if m and m.group(1).strip().lower() in _ID_KEYS and m.group(2).strip():
            return m.group(2).strip()
    return None


def deid_record(item: BiosignalItem, secrets: SourceSecrets, policy: Policy) -> BiosignalItem:
    local = patient_local_id(item)
    record = secrets.pseudonym(item.record_name, "record", 24)
    comments = []
    for c in item.comments:
        m = _KV.match(c)
        if m and m.group(1).strip().lower() in _KEEP_KEYS:
            comments.append(f"{m.group(1).strip()}: {m.group(2).strip()}")
    if local:
        comments.insert(0, f"patient: {secrets.patient(local)}")
    patient = {}
    if item.format == "edf":
        patient = {
            "code": secrets.patient(local) if local else "X",
            "name": "X",
            "sex": item.patient.get("sex", ""),
            "birthdate": "",
            "additional": "",
        }
    return dataclasses.replace(item, record_name=record, comments=comments, patient=patient, recording={})
