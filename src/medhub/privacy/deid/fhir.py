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
free text in their other resources can be checked against them.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from datetime import date
from typing import Any

from medhub.privacy.deid.common import AGE_TOP, Policy, SourceSecrets
from medhub.privacy.deid.dates import age_years, shift_fhir, shift_text_dates
from medhub.privacy.deid.text import Matcher

_PATIENT_REF = re.compile(r"(?<![A-Za-z0-9])Patient/([A-Za-z0-9\-.]{1,64})")
_DATE_VALUE = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")
_DATE_KEY = re.compile(r"(?:[Dd]ate|[Dd]ateTime|[Ii]nstant|[Pp]eriod)$")
_DATE_KEYS = frozenset(
    {
        "start",
        "end",
        "issued",
        "recorded",
        "authoredOn",
        "lastUpdated",
        "created",
        "timestamp",
        "sent",
        "received",
        "event",
        "asserted",
        "whenHandedOver",
        "whenPrepared",
        "occurrenceDateTime",
        "expiry",
        "due",
    }
)
FREE_TEXT_KEYS = frozenset(
    {
        "text",
        "valueString",
        "conclusion",
        "description",
        "comment",
        "summary",
        "contentString",
        "patientInstruction",
        "title",
        "answerString",
    }
)
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
_DICOM_UID_SYSTEM = "urn:dicom:uid"


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


def _patient_of(resource: dict[str, Any]) -> str | None:
    """The local id of the patient a resource is about: its own id for a Patient, else the first
    Patient reference among the usual elements (Provenance.target and Group.member included). A
    resource about no patient (Organization, Practitioner, Medication...) has no date shift."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id") or "") or None
    for k in _PATIENT_KEYS:
        refs = resource.get(k)
        for ref in refs if isinstance(refs, list) else (refs,):
            if isinstance(ref, dict):
                target = ref.get("reference")
                if not isinstance(target, str) and isinstance(ref.get("entity"), dict):
                    target = ref["entity"].get("reference")  # Group.member.entity
                if isinstance(target, str) and "Patient/" in target:
                    m = _PATIENT_REF.search(target)
                    if m:
                        return m.group(1)
    return None


class _Ctx:
    __slots__ = ("secrets", "policy", "shift", "matcher")

    def __init__(self, secrets: SourceSecrets, policy: Policy, shift: int, matcher: Matcher) -> None:
        self.secrets, self.policy, self.shift, self.matcher = secrets, policy, shift, matcher


def deid_resource(
    resource: dict[str, Any],
    secrets: SourceSecrets,
    policy: Policy,
    index: PatientIndex | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """De-identify `resource` in place and return it."""
    rtype = resource.get("resourceType")
    local = _patient_of(resource)
    if rtype == "Patient":
        matcher = patient_matcher(resource)
        if index is not None and local:
            index.add(local, matcher)
    else:
        known = index.get(local) if index is not None else None
        matcher = known or (_UNCHECKED if local and index is not None else _EMPTY)
    shift = secrets.shift_days(local) if (local and policy.shift_dates) else 0
    ctx = _Ctx(secrets, policy, shift, matcher)
    resource.pop("text", None)  # narrative
    birth = None
    if rtype == "Patient":
        birth = _patient(resource, ctx, today or date.today())
    elif rtype in _PEOPLE:
        for k in (*_PERSON_FIELDS, "address"):
            resource.pop(k, None)
    _walk(resource, ctx)
    if birth:
        resource["birthDate"] = birth
    return resource


def _patient(p: dict[str, Any], ctx: _Ctx, today: date) -> str | None:
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


def _birth_date(birth: Any, deceased: Any, ctx: _Ctx, today: date) -> str | None:
    """birthDate shifted; for people over 89 (at death or today) only the year that makes them 90."""
    if not isinstance(birth, str) or not _DATE_VALUE.match(birth):
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


def _clean_text(s: str, ctx: _Ctx) -> str:
    out = ctx.matcher.clean(s)
    if ctx.shift:
        out = shift_text_dates(out, ctx.shift)
    return out


# What a key means to the walk, decided once per key name (FHIR has a few hundred).
# Codings (system, version, code, display, userSelected) name concepts, never people, dates or
# references: the walk passes them by, which saves a good third of its work on real resources.
_PLAIN, _DATE, _TEXT, _IDENT, _NOTE, _DROP, _UID, _SKIP, _CONTAINED = range(9)
_KINDS: dict[str, int] = {
    "identifier": _IDENT,
    "note": _NOTE,
    "photo": _DROP,
    "presentedForm": _DROP,
    "uid": _UID,
    "coding": _SKIP,
    "valueCoding": _SKIP,
    "contained": _CONTAINED,
}


def _kind(key: str) -> int:
    kind = _KINDS.get(key)
    if kind is None:
        if key in _DATE_KEYS or _DATE_KEY.search(key):
            kind = _DATE
        elif key in FREE_TEXT_KEYS or key.startswith("valueString"):
            kind = _TEXT
        else:
            kind = _PLAIN
        if len(_KINDS) < 20_000:
            _KINDS[key] = kind
    return kind


def _string(kind: int, value: str, ctx: _Ctx) -> str:
    if kind == _DATE:
        if ctx.shift and _DATE_VALUE.match(value):
            return shift_fhir(value, ctx.shift) or value
    elif kind == _TEXT:
        return _clean_text(value, ctx)
    elif kind == _UID:
        return ctx.secrets.uid(value)
    if "Patient/" in value:
        return _PATIENT_REF.sub(lambda m: "Patient/" + ctx.secrets.patient(m.group(1)), value)
    return value


def _walk(node: dict[str, Any], ctx: _Ctx, _kinds: dict[str, int] = _KINDS) -> None:
    """De-identify a dict in place (the hot path of FHIR ingestion: one pass, no copies)."""
    # A display outside a Coding is a Reference's (or an Identifier's assigner's) display: free
    # text naming a person or an organization. Codings (with code or system) name concepts.
    if "display" in node and ("reference" in node or ("code" not in node and "system" not in node)):
        node.pop("display", None)
    if "contentType" in node and "data" in node:  # an Attachment with inline content
        node.pop("data", None)
        node.pop("url", None)
    drop: list[str] = []
    shift = ctx.shift
    for k, v in node.items():  # values are replaced in place; keys to remove go after the loop
        kind = _kinds.get(k)
        if kind is None:
            kind = _kind(k)
        tv = type(v)
        if kind == _PLAIN:  # most keys: only references to rewrite, and containers to enter
            if tv is str:
                if "Patient/" in v:
                    node[k] = _string(kind, v, ctx)
                elif shift and len(v) >= 10 and v[4] == "-" and v[7] == "-" and _DATE_VALUE.match(v):
                    node[k] = shift_fhir(v, shift) or v  # a full date under a key not named like one
            elif tv is dict:
                _walk(v, ctx)
            elif tv is list:
                _walk_list(v, kind, ctx)
        elif kind == _SKIP:
            continue
        elif kind == _IDENT:
            ids = _identifiers(v, ctx)
            if ids:
                node[k] = ids
            else:
                drop.append(k)
        elif kind == _NOTE:
            if ctx.policy.fhir_notes == "clean" and tv is list:
                node[k] = [_note(n, ctx) for n in v if isinstance(n, dict)]
            else:
                drop.append(k)
        elif kind == _DROP:
            drop.append(k)
        elif kind == _CONTAINED and tv is list:
            for inner in v:
                if isinstance(inner, dict):
                    _strip_people(inner, ctx)
            _walk_list(v, _PLAIN, ctx)
        elif tv is str:
            if kind == _TEXT and ctx.matcher is _UNCHECKED:
                drop.append(k)
            else:
                node[k] = _string(kind, v, ctx)
        elif tv is dict:
            _walk(v, ctx)
        elif tv is list:
            _walk_list(v, kind, ctx)
    for k in drop:
        del node[k]


def _strip_people(res: dict[str, Any], ctx: _Ctx) -> None:
    """A contained resource that describes a person loses that person's identity too."""
    rtype = res.get("resourceType")
    if rtype in _PEOPLE or rtype == "Patient":
        for k in (*_PERSON_FIELDS, "address", "extension"):
            res.pop(k, None)
        if rtype == "Patient":
            res.pop("birthDate", None)  # a contained patient's age is not grouped: drop its birth date
    res.pop("text", None)


def _looks_dated(v: str, ctx: _Ctx) -> bool:
    """A full FHIR date or dateTime (YYYY-MM-DD...), which no code, id or text looks like."""
    return (
        bool(ctx.shift) and len(v) >= 10 and v[4] == "-" and v[7] == "-" and _DATE_VALUE.match(v) is not None
    )


def _walk_list(items: list[Any], kind: int, ctx: _Ctx) -> None:
    for i, x in enumerate(items):
        tx = type(x)
        if tx is dict:
            _walk(x, ctx)
        elif tx is str:
            if kind == _PLAIN and _looks_dated(x, ctx):
                items[i] = shift_fhir(x, ctx.shift) or x
            elif kind == _TEXT and ctx.matcher is _UNCHECKED:
                items[i] = ""
            elif kind != _PLAIN or "Patient/" in x:
                items[i] = _string(kind, x, ctx)
        elif tx is list:
            _walk_list(x, kind, ctx)


def _note(n: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(n.get("text"), str):
        out["text"] = _clean_text(n["text"], ctx)
    if isinstance(n.get("time"), str):
        out["time"] = shift_fhir(n["time"], ctx.shift) or n["time"] if ctx.shift else n["time"]
    return out


def _identifiers(value: Any, ctx: _Ctx) -> Any:
    items = value if isinstance(value, list) else [value]
    out = []
    for ident in items:
        if not isinstance(ident, dict):
            continue
        ident = {k: v for k, v in ident.items() if k in ("use", "type", "system", "value", "period")}
        system = str(ident.get("system", ""))
        raw = str(ident.get("value", ""))
        if "value" in ident:
            if system == _DICOM_UID_SYSTEM:
                uid = raw[8:] if raw.startswith("urn:oid:") else raw
                ident["value"] = ("urn:oid:" if raw.startswith("urn:oid:") else "") + ctx.secrets.uid(uid)
            elif _is_accession(ident):
                ident["value"] = ctx.secrets.pseudonym(raw, "accession", 16).upper()
            else:
                ident["value"] = ctx.secrets.pseudonym(raw, "identifier:" + system)
        if isinstance(ident.get("type"), dict):
            ident["type"].pop("text", None)
        if isinstance(ident.get("period"), dict):
            _walk(ident["period"], ctx)
        out.append(ident)
    return out if isinstance(value, list) else (out[0] if out else None)


def _is_accession(ident: dict[str, Any]) -> bool:
    t = ident.get("type")
    if not isinstance(t, dict):
        return False
    return any(isinstance(c, dict) and c.get("code") == "ACSN" for c in t.get("coding") or [])
