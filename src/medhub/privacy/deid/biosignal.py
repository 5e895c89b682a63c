"""De-identification of one biosignal record (WFDB or EDF+); samples are never touched.

- Record name: a keyed pseudonym (a record name often carries a subject id or a date).
- Start date and time: shifted by the patient's secret shift (the same as in FHIR and DICOM).
- WFDB header comments: "key: value" fields are kept when clinically useful (age grouped over 89,
  sex, rhythm, diagnoses...), dates in them are shifted; names, ids, institution and staff fields
  are dropped; the patient id becomes one "patient: <pseudonym>" line; every kept line is cleaned
  of the patient's own identifiers and of identifier-shaped strings.
- EDF+: patient code -> pseudonym, name -> "X", sex kept, birth date shifted ("X" over 89),
  additional fields cleaned; recording admin code -> pseudonym, technician -> "X", equipment kept;
  annotation texts cleaned and their dates shifted.

The patient key is the MRN / patient id field of a WFDB header, or the EDF+ patient code. A record
without one is keyed by its record name: its own dates keep their intervals, but it cannot be
aligned with the patient's FHIR and DICOM dates.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from medhub.ingest.records import Annotation, BiosignalItem
from medhub.privacy.deid.common import AGE_TOP, Policy, SourceSecrets
from medhub.privacy.deid.dates import shift_datetime, shift_text_dates
from medhub.privacy.deid.text import Matcher

_KV = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _/().-]{0,40}?)\s*[:=]\s*(.*?)\s*$")
ID_KEYS = frozenset(
    {
        "mrn",
        "patient id",
        "patient_id",
        "patientid",
        "id",
        "subject",
        "subject id",
        "subject_id",
        "hospital no",
    }
)
NAME_KEYS = frozenset({"patient", "name", "patient name", "patient_name", "patientname"})
DROP_KEYS = frozenset(
    {
        "technician",
        "operator",
        "physician",
        "doctor",
        "referring physician",
        "institution",
        "hospital",
        "address",
        "phone",
        "telephone",
        "rrn",
        "ssn",
        "email",
        "accession",
        "accession number",
        "birth date",
        "birthdate",
        "date of birth",
        "dob",
    }
)
_AGE_KEYS = frozenset({"age"})
# MIT-BIH style first comment line: "69 M 1085 1629 x1" (age, sex, then record numbers)
_MITBIH_AGE = re.compile(r"^(\s*)(\d{1,3})(\s+[MF]\b)")
_AGE_IN_TEXT = re.compile(r"(?i)\b(age[_:\s]*)(\d{1,3})\b")


def patient_local_id(item: BiosignalItem) -> str | None:
    """The source's local patient id in this record, if it carries one."""
    if item.format == "edf":
        code = (item.patient.get("code") or "").strip()
        return code if code and code.upper() != "X" else None
    for c in item.comments:
        m = _KV.match(c)
        if m and m.group(1).strip().lower() in ID_KEYS and m.group(2).strip():
            return m.group(2).strip()
    return None


def _group_age_text(value: str) -> str:
    def one(n: str) -> str:
        return f"{AGE_TOP + 1}+" if int(n) > AGE_TOP else n

    value = _AGE_IN_TEXT.sub(lambda m: m.group(1) + one(m.group(2)), value)
    return _MITBIH_AGE.sub(lambda m: m.group(1) + one(m.group(2)) + m.group(3), value)


def _matcher(item: BiosignalItem) -> Matcher:
    names, ids = [], []
    for c in item.comments:
        m = _KV.match(c)
        if not m:
            continue
        key, value = m.group(1).strip().lower(), m.group(2).strip()
        if key in NAME_KEYS:
            names.append(value)
        elif key in ID_KEYS or key in DROP_KEYS:
            (names if key in ("technician", "operator", "physician", "doctor") else ids).append(value)
    if item.patient.get("name", "").upper() not in ("", "X"):
        names.append(item.patient["name"])
    if item.patient.get("code", "").upper() not in ("", "X"):
        ids.append(item.patient["code"])
    if item.recording.get("technician", "") not in ("", "X"):
        names.append(item.recording["technician"])
    if item.recording.get("admincode", "") not in ("", "X"):
        ids.append(item.recording["admincode"])
    return Matcher(names, ids)


def _clean(text: str, matcher: Matcher, shift: int, policy: Policy) -> str:
    text = matcher.clean(text)
    if policy.shift_dates:
        text = shift_text_dates(text, shift)
    return _group_age_text(text)


def deid_record(
    item: BiosignalItem,
    secrets: SourceSecrets,
    policy: Policy,
    known: Callable[[str], Matcher | None] | None = None,
) -> BiosignalItem:
    """A de-identified copy of the record's header fields (the sample arrays are shared, not copied).
    `known(patient_id)`: the identifiers this source sent for the patient in other modalities."""
    local = patient_local_id(item)
    key = local if local else f"record:{item.record_name}"
    shift = secrets.shift_days(key) if policy.shift_dates else 0
    matcher = _matcher(item)
    other = known(local) if known and local else None
    if other is not None:
        matcher = matcher | other
    comments: list[str] = [f"patient: {secrets.patient(key)}"] if local else []
    for c in item.comments:
        m = _KV.match(c)
        if m:
            key_l = m.group(1).strip().lower()
            if key_l in ID_KEYS or key_l in NAME_KEYS or key_l in DROP_KEYS:
                continue
            value = _clean(m.group(2), matcher, shift, policy)
            if key_l in _AGE_KEYS and value.isdigit() and int(value) > AGE_TOP:
                value = f"{AGE_TOP + 1}+"
            comments.append(f"{m.group(1).strip()}: {value}")
        else:
            cleaned = _clean(c, matcher, shift, policy)
            if cleaned.strip():
                comments.append(cleaned)
    patient: dict[str, str] = {}
    recording: dict[str, str] = {}
    if item.format == "edf":
        patient = _edf_patient(item, secrets, key if local else None, shift, matcher, policy)
        recording = _edf_recording(item, secrets, matcher, shift, policy)
    annotations = [
        Annotation(a.onset_s, a.duration_s, _clean(a.text, matcher, shift, policy)) for a in item.annotations
    ]
    return dataclasses.replace(
        item,
        record_name=secrets.pseudonym(item.record_name, "record", 24),
        start=shift_datetime(item.start, shift) if policy.shift_dates else item.start,
        comments=comments,
        patient=patient,
        recording=recording,
        annotations=annotations,
    )


def _over_89(item: BiosignalItem, birth_text: str) -> bool:
    m = re.search(r"(\d{4})\s*$", birth_text or "")
    if not m or item.start is None:
        return False
    return item.start.year - int(m.group(1)) - 1 >= AGE_TOP


def _edf_patient(
    item: BiosignalItem, secrets: SourceSecrets, key: str | None, shift: int, matcher: Matcher, policy: Policy
) -> dict[str, str]:
    src = item.patient
    birth = (src.get("birthdate") or "").strip()
    if not birth or birth.upper() == "X" or _over_89(item, birth):
        birth_out = "X"
    else:
        birth_out = shift_text_dates(birth, shift) if policy.shift_dates else birth
        if birth_out == birth and policy.shift_dates:
            birth_out = "X"  # a birth date we cannot read is not passed on unshifted
    out = {
        "code": secrets.patient(key) if key else "X",
        "name": "X",
        "sex": src.get("sex", "") if policy.retain_patient_characteristics else "",
        "birthdate": birth_out,
        "additional": _clean(src.get("additional", ""), matcher, shift, policy),
    }
    for k, v in src.items():  # fields a reader adds beyond the EDF+ four: cleaned, never passed raw
        if k not in out:
            out[k] = _clean(str(v), matcher, shift, policy)
    return out


def _edf_recording(
    item: BiosignalItem, secrets: SourceSecrets, matcher: Matcher, shift: int, policy: Policy
) -> dict[str, str]:
    src = item.recording
    out: dict[str, str] = {}
    for k, v in src.items():
        v = str(v or "")
        if k == "admincode":
            out[k] = secrets.pseudonym(v, "admincode", 16) if v and v.upper() != "X" else "X"
        elif k == "technician":
            out[k] = "X"
        elif k == "equipment" and policy.retain_device_identity:
            out[k] = matcher.clean(v)
        else:
            out[k] = _clean(v, matcher, shift, policy)
    return out
