"""De-identification of one FHIR R4 resource (a plain dict, as read), in place.

- Patient: id -> the patient's keyed pseudonym; name, telecom, photo, contact removed; address cut
  to the configured level (default: first level, e.g. "서울특별시") with the postcode truncated;
  birthDate shifted, and generalized to a year for people over 89 (the "90 or older" group);
  extensions kept only where their value is coded, numeric or boolean (mothersMaidenName,
  birthPlace and the like go).
- RelatedPerson, Practitioner, Person: names, telecom, addresses and photos removed.
- Every resource: "Patient/<id>" rewritten to "Patient/<pseudonym>" wherever it appears; Reference
  displays removed; identifiers pseudonymized (DICOM UIDs and accession numbers the same way as in
  DICOM, so ImagingStudy still joins to the images); narrative (text) removed; notes (Annotation)
  removed, or cleaned with Policy.fhir_notes="clean"; attachments' inline data removed; free text
  cleaned of the patient's own identifiers and identifier-shaped strings; every date, dateTime and
  instant shifted by the patient's secret shift, keeping its precision and time zone.

The patient of a resource other than Patient is found from its subject/patient/beneficiary
reference; `PatientIndex` remembers the identifiers of Patients already seen (bounded), so that
free text in their other resources can be checked against them. This module owns the rules per
resource (whose patient, Patient and people fields, birth dates, addresses, extensions); the rules
per element, and their plans for datatypes of fixed shape, are `deid.fhir_elements`.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from datetime import date
from typing import Any

from medhub.privacy.deid.cache import remember
from medhub.privacy.deid.common import AGE_TOP, Policy, SourceSecrets
from medhub.privacy.deid.dates import age_years, shift_fhir
from medhub.privacy.deid.fhir_elements import DATE_VALUE, FREE_TEXT_KEYS, PATIENT_REF, Ctx, walk
from medhub.privacy.deid.text import Matcher

__all__ = [
    "FREE_TEXT_KEYS",
    "PatientIndex",
    "clear_reference_cache",
    "deid_resource",
    "patient_matcher",
    "resource_ctx",
]

_PERSON_FIELDS = ("name", "telecom", "photo", "contact")
_PEOPLE = frozenset({"RelatedPerson", "Practitioner", "Person"})
_SAFE_EXT_VALUES = frozenset(
    {
        "valueCoding",
        "valueCodeableConcept",
        "valueCode",
        "valueBoolean",
        "valueDecimal",
        "valueInteger",
        "valueQuantity",
        "valueUnsignedInt",
        "valuePositiveInt",
        "valueUri",
    }
)


class PatientIndex:
    """The identifiers of recently seen Patients of one source, for cleaning their free text."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._m: OrderedDict[str, Matcher] = OrderedDict()

    def add(self, local_id: str, matcher: Matcher) -> None:
        self._m[local_id] = matcher
        self._m.move_to_end(local_id)
        while len(self._m) > self.capacity:
            self._m.popitem(last=False)

    def get(self, local_id: str | None) -> Matcher | None:
        return self._m.get(local_id) if local_id else None


_EMPTY = Matcher()
# The matcher of a resource whose Patient this source has not sent (yet): its free text cannot be
# checked against the patient's identifiers, so it is dropped rather than passed unchecked.
_UNCHECKED = Matcher()


def patient_matcher(patient: dict[str, Any]) -> Matcher:
    names, ids, others = [], [], []
    for n in patient.get("name") or []:
        if isinstance(n, dict):
            parts = [*(n.get("given") or []), n.get("family") or ""]
            names.append(" ".join(str(p) for p in parts if p))
            names.append(str(n.get("family") or "") + "^" + "^".join(str(g) for g in n.get("given") or []))
            if n.get("text"):
                names.append(str(n["text"]))
    for i in patient.get("identifier") or []:
        if isinstance(i, dict) and i.get("value"):
            ids.append(str(i["value"]))
    if patient.get("id"):
        ids.append(str(patient["id"]))
    for t in patient.get("telecom") or []:
        if isinstance(t, dict) and t.get("value"):
            others.append(str(t["value"]))
    for a in patient.get("address") or []:
        if isinstance(a, dict):
            others += [str(x) for x in a.get("line") or []]
            if a.get("text"):
                others.append(str(a["text"]))
    return Matcher(names, ids, others)


_PATIENT_KEYS = ("subject", "patient", "beneficiary", "individual", "for", "focus", "target", "member")


def _patient_of(resource: dict[str, Any], refs: dict[str, str] | None = None) -> str | None:
    """The local id of the patient a resource is about: its own id for a Patient, else the first
    Patient reference among the usual elements (Provenance.target and Group.member included), a
    Bundle's `urn:uuid:` reference read through `refs`. A resource about no patient (Organization,
    Practitioner, Medication...) has no date shift."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id") or "") or None
    for k in _PATIENT_KEYS:
        values = resource.get(k)
        if values is None:
            continue
        for ref in values if isinstance(values, list) else (values,):
            if isinstance(ref, dict):
                target = ref.get("reference")
                if not isinstance(target, str) and isinstance(ref.get("entity"), dict):
                    target = ref["entity"].get("reference")  # Group.member.entity
                if refs is not None and isinstance(target, str) and target.startswith("urn:uuid:"):
                    target = refs.get(target, target)
                if isinstance(target, str) and "Patient/" in target:
                    local = _LOCALS.get(target)
                    if local is None:
                        m = PATIENT_REF.search(target)
                        local = remember(_LOCALS, target, m.group(1) if m else "")
                    if local:
                        return local
    return None


_LOCALS: dict[str, str] = {}  # a reference -> the local patient id in it ("" for none); bounded


def clear_reference_cache() -> None:
    """Forget the local patient ids read from references (see `medhub.privacy.deid.clear_caches`)."""
    _LOCALS.clear()


def deid_resource(
    resource: dict[str, Any],
    secrets: SourceSecrets,
    policy: Policy,
    index: PatientIndex | None = None,
    today: date | None = None,
    refs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """De-identify `resource` in place and return it. `refs`, for a Bundle entry whose `urn:uuid:`
    references are left as sent, maps each fullUrl to `Type/id`: the walk resolves every reference
    it meets (each one it does not skip as a datatype of primitives, which holds none) before
    de-identifying it, so the result is that of resolving first."""
    rtype = resource.get("resourceType")
    local = _patient_of(resource, refs)
    if rtype == "Patient":
        matcher = patient_matcher(resource)
        if index is not None and local:
            index.add(local, matcher)
        ctx = _ctx(local, matcher, secrets, policy, refs)
    else:
        ctx = resource_ctx(local, secrets, policy, index, refs)
    resource.pop("text", None)  # narrative
    birth = None
    if rtype == "Patient":
        birth = _patient(resource, ctx, today or date.today())
    elif rtype in _PEOPLE:
        for k in (*_PERSON_FIELDS, "address"):
            resource.pop(k, None)
    walk(resource, ctx)
    if birth:
        resource["birthDate"] = birth
    return resource


def resource_ctx(
    local: str | None,
    secrets: SourceSecrets,
    policy: Policy,
    index: PatientIndex | None,
    refs: dict[str, str] | None = None,
) -> Ctx:
    """The walk's context for a resource other than a Patient, about the patient `local` (None:
    about no patient): the matcher of that Patient where this source sent it, else the unchecked
    one (its free text is dropped), and the patient's date shift."""
    known = index.get(local) if index is not None else None
    matcher = known or (_UNCHECKED if local and index is not None else _EMPTY)
    return _ctx(local, matcher, secrets, policy, refs)


def _ctx(
    local: str | None, matcher: Matcher, secrets: SourceSecrets, policy: Policy, refs: dict[str, str] | None
) -> Ctx:
    shift = secrets.shift_days(local) if (local and policy.shift_dates) else 0
    return Ctx(secrets, policy, shift, matcher, matcher is _UNCHECKED, refs)


def _patient(p: dict[str, Any], ctx: Ctx, today: date) -> str | None:
    if isinstance(p.get("id"), str):
        p["id"] = ctx.secrets.patient(p["id"])
    for k in _PERSON_FIELDS:
        p.pop(k, None)
    addrs = [_address(a, ctx.policy) for a in p.get("address") or [] if isinstance(a, dict)]
    addrs = [a for a in addrs if a]
    if addrs:
        p["address"] = addrs
    else:
        p.pop("address", None)
    exts = [e for e in p.get("extension") or [] if _safe_extension(e)]
    if exts:
        p["extension"] = exts
    else:
        p.pop("extension", None)
    return _birth_date(p.pop("birthDate", None), p.get("deceasedDateTime"), ctx, today)


def _birth_date(birth: Any, deceased: Any, ctx: Ctx, today: date) -> str | None:
    """birthDate shifted; for people over 89 (at death or today) only the year that makes them 90."""
    if not isinstance(birth, str) or not DATE_VALUE.match(birth):
        return None
    ref = today
    if isinstance(deceased, str) and len(deceased) >= 10:
        with contextlib.suppress(ValueError):
            ref = date.fromisoformat(deceased[:10])
    try:
        month = int(birth[5:7]) if len(birth) >= 7 else 1
        born = date(int(birth[:4]), month, int(birth[8:10]) if len(birth) >= 10 else 1)
    except ValueError:
        return None
    if age_years(born, ref) > AGE_TOP:
        shifted_ref = shift_fhir(ref.isoformat(), ctx.shift) or ref.isoformat()
        return f"{int(shifted_ref[:4]) - AGE_TOP - 1:04d}"
    return shift_fhir(birth, ctx.shift) if ctx.shift else birth


def _address(a: dict[str, Any], policy: Policy) -> dict[str, Any] | None:
    out: dict[str, Any] = {k: a[k] for k in ("use", "type", "country") if k in a}
    level = policy.address_level
    state = a.get("state")
    if not state and isinstance(a.get("text"), str) and a["text"].split():
        state = a["text"].split()[0]  # Korean addresses begin with the province or metropolitan city
    if level >= 1 and state:
        out["state"] = state
    if level >= 2 and a.get("city"):
        out["city"] = a["city"]
    pc = a.get("postalCode")
    if pc and policy.postcode_digits > 0:
        digits = re.sub(r"\D", "", str(pc))[: policy.postcode_digits]
        if digits:
            out["postalCode"] = digits
    if "period" in a:
        out["period"] = a["period"]
    return out if any(k in out for k in ("state", "city", "postalCode", "country")) else None


def _safe_extension(e: Any) -> bool:
    if not isinstance(e, dict):
        return False
    values = [k for k in e if k.startswith("value")]
    if any(v not in _SAFE_EXT_VALUES for v in values):
        return False
    if "extension" in e:
        e["extension"] = [x for x in e["extension"] if _safe_extension(x)]
    return bool(values) or bool(e.get("extension"))
