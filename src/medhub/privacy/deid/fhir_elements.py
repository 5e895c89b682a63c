"""The element walk of FHIR de-identification: what each element of a resource becomes, in place.

`deid.fhir` decides per resource (whose patient, which shift, which matcher, Patient and people
rules); this module rewrites every element below it in one pass, no copies:

- what a key means is decided once per key name (`KINDS`, a few hundred names in FHIR): a date,
  free text, an identifier, a note, a UID, something to drop, a Coding to pass by, contained
  resources, or plain (only references to rewrite and full dates to shift);
- known datatypes whose shape is fixed get a plan of their own instead of the generic loop:
  `meta` (lastUpdated shifted, tags and security labels are Codings), a Reference reduced to its
  `reference` (and `display`, removed), a CodeableConcept (its text checked); an element whose
  keys a plan does not know goes through the generic loop, as strictly as any other;
- the commonest shapes are settled in the loop itself, without a call: a one-key Reference, a
  CodeableConcept of Codings alone (nothing in it changes), a Period's two dates;
- the keyed and regex work is cached, bounded: a reference rewritten, a date shifted (a dateTime by
  its day, so a patient's instants of one day share one shift), a free text cleaned (per patient
  matcher and shift), since the same values recur across a patient's resources.
"""

from __future__ import annotations

import re
from typing import Any, Final

from medhub.privacy.deid.cache import remember
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.dates import shift_fhir
from medhub.privacy.deid.text import CACHED_TEXT_CHARS, Matcher, cleaned_text

PATIENT_REF: Final = re.compile(r"(?<![A-Za-z0-9])Patient/([A-Za-z0-9\-.]{1,64})")
DATE_VALUE: Final = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_DATE_KEY: Final = re.compile(r"(?:[Dd]ate|[Dd]ateTime|[Ii]nstant|[Pp]eriod)$")
_DATE_KEYS: Final = frozenset(
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
FREE_TEXT_KEYS: Final = frozenset(
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
_DICOM_UID_SYSTEM: Final = "urn:dicom:uid"


class Ctx:
    """What the walk needs for one resource: the source's secrets, the policy, the patient's shift
    and matcher, whether that matcher is unchecked (the patient not seen: free text is dropped), and
    the Bundle's fullUrl map where `urn:uuid:` references are left to the walk (`refs`, else None)."""

    __slots__ = ("secrets", "policy", "shift", "matcher", "unchecked", "refs")

    def __init__(
        self,
        secrets: SourceSecrets,
        policy: Policy,
        shift: int,
        matcher: Matcher,
        unchecked: bool,
        refs: dict[str, str] | None = None,
    ) -> None:
        self.secrets, self.policy, self.shift, self.matcher = secrets, policy, shift, matcher
        self.unchecked = unchecked
        self.refs = refs


# --- cached value rewrites ------------------------------------------------------------------------

_REFS: Final[dict[tuple[SourceSecrets, str], str]] = {}


def patient_refs(value: str, secrets: SourceSecrets) -> str:
    """`value` with every "Patient/<id>" in it rewritten to "Patient/<pseudonym>"."""
    key = (secrets, value)
    out = _REFS.get(key)
    if out is None:
        out = PATIENT_REF.sub(lambda m: "Patient/" + secrets.patient(m.group(1)), value)
        if len(value) <= CACHED_TEXT_CHARS:  # a long text with a reference in it is not kept
            remember(_REFS, key, out)
    return out


def shifted_date(value: str, shift: int) -> str | None:
    """A FHIR date, dateTime or instant shifted (kept as is where it is not a real calendar date);
    None where `value` is not date-shaped at all. Cached (a plain bounded dict: an lru_cache call
    costs more than the lookup itself on this path)."""
    key = (value, shift)
    out = _SHIFTED.get(key)
    if out is None:
        # "" stands for None (not date-shaped): no shifted date is empty
        out = remember(_SHIFTED, key, _shifted_date(value, shift) or "")
    return out or None


def _shifted_date(value: str, shift: int) -> str | None:
    if not DATE_VALUE.match(value):
        return None
    if len(value) > 10:  # a dateTime or instant: its day shifted (cached: a patient's days recur), time kept
        day = shift_fhir(value[:10], shift)
        return day + value[10:] if day is not None else value
    return shift_fhir(value, shift) or value


_SHIFTED: Final[dict[tuple[str, int], str]] = {}


def clear_date_cache() -> None:
    """Forget the dates shifted (tests start cold)."""
    _SHIFTED.clear()


def clear_walk_caches() -> None:
    """Forget everything the walk keeps: dates shifted, references rewritten, identifiers
    pseudonymized (see `medhub.privacy.deid.clear_caches`)."""
    _SHIFTED.clear()
    _REFS.clear()
    _IDS.clear()


def clean_text(value: str, ctx: Ctx) -> str:
    """Free text with the patient's identifiers and identifier-shaped strings masked, and its dates
    shifted by the patient's shift."""
    return cleaned_text(ctx.matcher, ctx.shift or None, value)


# --- what a key means ----------------------------------------------------------------------------
# Codings (system, version, code, display, userSelected) name concepts, never people, dates or
# references: the walk passes them by. Meta, Reference and CodeableConcept have plans of their own.
PLAIN: Final = 0
DATE: Final = 1
TEXT: Final = 2
IDENT: Final = 3
NOTE: Final = 4
DROP: Final = 5
UID: Final = 6
SKIP: Final = 7
CONTAINED: Final = 8
META: Final = 9
KINDS: Final[dict[str, int]] = {
    "identifier": IDENT,
    "note": NOTE,
    "photo": DROP,
    "presentedForm": DROP,
    "uid": UID,
    "coding": SKIP,
    "valueCoding": SKIP,
    "contained": CONTAINED,
    "meta": META,
}


def kind_of(key: str) -> int:
    kind = KINDS.get(key)
    if kind is None:
        if key in _DATE_KEYS or _DATE_KEY.search(key):
            kind = DATE
        elif key in FREE_TEXT_KEYS or key.startswith("valueString"):
            kind = TEXT
        else:
            kind = PLAIN
        if len(KINDS) < 20_000:
            KINDS[key] = kind
    return kind


def _string(kind: int, value: str, ctx: Ctx) -> str:
    """A string under a key of `kind` (not PLAIN, SKIP or the structural kinds)."""
    if kind == DATE:
        if ctx.shift:
            out = shifted_date(value, ctx.shift)
            if out is not None:
                return out
    elif kind == TEXT:
        return clean_text(value, ctx)
    elif kind == UID:
        return ctx.secrets.uid(value)
    if "Patient/" in value:
        return patient_refs(value, ctx.secrets)
    return value


def _plain(value: str, ctx: Ctx) -> str:
    """A string under a plain key: a Patient reference rewritten, a full date shifted."""
    if "Patient/" in value:
        return patient_refs(value, ctx.secrets)
    shift = ctx.shift
    if shift and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        out = shifted_date(value, shift)
        if out is not None:
            return out
    return value


def _reference(r: dict[str, Any], target: str, ctx: Ctx) -> None:
    """A Reference's `reference` (the string `target`): a Bundle's `urn:uuid:` resolved first, then
    a Patient rewritten or a full date shifted, as under any plain key."""
    refs = ctx.refs
    if refs is not None and target.startswith("urn:uuid:"):
        target = r["reference"] = refs.get(target, target)
    if "Patient/" in target or (ctx.shift and len(target) >= 10 and target[4] == "-"):
        r["reference"] = _plain(target, ctx)


# --- the walk ------------------------------------------------------------------------------------

_REFERENCE_KEYS: Final = frozenset({"reference", "display"})
_META_KEYS: Final = frozenset({"lastUpdated", "tag", "security", "profile", "versionId", "source"})


def walk(node: dict[str, Any], ctx: Ctx, _kinds: dict[str, int] = KINDS) -> None:
    """De-identify a dict in place (the hot path of FHIR ingestion)."""
    # A display outside a Coding is a Reference's (or an Identifier's assigner's) display: free
    # text naming a person or an organization. Codings (with code or system) name concepts.
    if "display" in node and ("reference" in node or ("code" not in node and "system" not in node)):
        del node["display"]
    if "contentType" in node and "data" in node:  # an Attachment with inline content
        del node["data"]
        node.pop("url", None)
    drop: list[str] | None = None
    shift = ctx.shift
    refs = ctx.refs
    for k, v in node.items():  # values are replaced in place; keys to remove go after the loop
        try:
            kind = _kinds[k]
        except KeyError:
            kind = kind_of(k)
        tv = type(v)
        # Most keys are plain: only references to rewrite, and containers to enter. A `meta` that
        # is not the shape of a Meta gets what any plain key gets.
        if kind == PLAIN or (kind == META and (tv is not dict or not _only(v, _META_KEYS))):
            if tv is str:
                if refs is not None and k == "reference" and v.startswith("urn:uuid:"):
                    v = node[k] = refs.get(v, v)  # a Bundle reference, resolved before anything else
                if "Patient/" in v or (shift and len(v) >= 10 and v[4] == "-" and v[7] == "-"):
                    node[k] = _plain(v, ctx)
            elif tv is dict:
                if len(v) == 1:  # two shapes settled without a call: a one-key Reference, Codings alone
                    ref = v.get("reference")
                    if type(ref) is str:
                        _reference(v, ref, ctx)
                        continue
                    coding = v.get("coding")
                    if type(coding) is list and _codings(coding):
                        continue  # a CodeableConcept of Codings alone: nothing in it changes
                element(v, ctx)
            elif tv is list:
                walk_list(v, PLAIN, ctx)
        elif kind == DATE:  # as _string(DATE), without the call: the commonest kind after plain
            if tv is str:
                if shift:
                    out = shifted_date(v, shift)
                    if out is not None:
                        node[k] = out
                        continue
                if "Patient/" in v:
                    node[k] = patient_refs(v, ctx.secrets)
            elif tv is dict:
                if _only(v, _PERIOD_KEYS):
                    _period(v, ctx)
                else:
                    walk(v, ctx)
            elif tv is list:
                walk_list(v, DATE, ctx)
        elif kind == META:
            _meta(v, ctx)
        elif kind == SKIP:  # a Coding, or a list of them: passed by where they are only Codings
            if tv is dict:
                if not _is_coding(v):
                    walk(v, ctx)
            elif tv is list:
                if not _codings(v):
                    walk_list(v, PLAIN, ctx)
            elif tv is str and "Patient/" in v:
                node[k] = patient_refs(v, ctx.secrets)
        elif kind == IDENT:
            ids = identifiers(v, ctx)
            if ids:
                node[k] = ids
            else:
                drop = [*(drop or ()), k]
        elif kind == NOTE:
            if ctx.policy.fhir_notes == "clean" and tv is list:
                node[k] = [_note(n, ctx) for n in v if isinstance(n, dict)]
            else:
                drop = [*(drop or ()), k]
        elif kind == DROP:
            drop = [*(drop or ()), k]
        elif kind == CONTAINED and tv is list:
            for inner in v:
                if isinstance(inner, dict):
                    strip_people(inner)
            walk_list(v, PLAIN, ctx)
        elif tv is str:
            if kind == TEXT and ctx.unchecked:
                drop = [*(drop or ()), k]
            else:
                node[k] = _string(kind, v, ctx)
        elif tv is dict:
            walk(v, ctx)
        elif tv is list:
            walk_list(v, kind, ctx)
    if drop:
        for k in drop:
            del node[k]


_CONCEPT_KEYS: Final = frozenset({"coding", "text"})
_PERIOD_KEYS: Final = frozenset({"start", "end"})
_QUANTITY_KEYS: Final = frozenset({"value", "comparator", "unit", "system", "code"})
_MONEY_KEYS: Final = frozenset({"value", "currency"})


_ADJUDICATION_KEYS: Final = frozenset({"category", "reason", "amount", "value"})


def element(v: dict[str, Any], ctx: Ctx) -> None:
    """A dict under a plain key (or in a list under one): a datatype of fixed shape by its plan,
    anything else (a shape with a key the plan does not know) by the generic walk."""
    if "coding" in v:
        if _only(v, _CONCEPT_KEYS):
            coding = v["coding"]
            if type(coding) is list and _codings(coding):
                if "text" in v:
                    _concept(v, ctx)
                return  # Codings only: passed by
    elif "reference" in v or "display" in v:
        if _only(v, _REFERENCE_KEYS):  # a Reference: its display removed, a Patient rewritten
            if "display" in v:
                del v["display"]
            target = v.get("reference")
            if type(target) is str:
                _reference(v, target, ctx)
            elif target is not None:
                _enter(target, PLAIN, ctx)
            return
    elif "currency" in v:
        if _only(v, _MONEY_KEYS) and _flat(v):
            return  # Money: a decimal and a currency code
    elif "start" in v or "end" in v:
        if _only(v, _PERIOD_KEYS):
            _period(v, ctx)
            return
    elif "category" in v:
        if _only(v, _ADJUDICATION_KEYS):  # Claim and ExplanationOfBenefit adjudication, total
            for k in v:
                _value(v, k, PLAIN, ctx)
            return
    elif "text" in v:
        if len(v) == 1:
            _concept(v, ctx)
            return
    elif ("unit" in v or "code" in v) and _only(v, _QUANTITY_KEYS) and _flat(v):
        return  # Quantity (Age, Duration, Count, Distance...): a decimal, a comparator, unit codes
    walk(v, ctx)


def _concept(cc: dict[str, Any], ctx: Ctx) -> None:
    """A CodeableConcept {coding, text}: the Codings passed by, the text checked (dropped where
    the patient is unseen, as the generic loop does)."""
    text = cc.get("text")
    if type(text) is str:
        if ctx.unchecked:
            del cc["text"]
        else:
            cc["text"] = cleaned_text(ctx.matcher, ctx.shift or None, text)  # clean_text, without the call
    elif text is not None:
        walk(cc, ctx)


def _period(period: dict[str, Any], ctx: Ctx) -> None:
    """A Period {start, end}: both dates shifted (as `_string` does to a date, without the call)."""
    shift = ctx.shift
    for k, v in period.items():
        if type(v) is str:
            if shift:
                out = shifted_date(v, shift)
                if out is not None:
                    period[k] = out
                    continue
            if "Patient/" in v:
                period[k] = patient_refs(v, ctx.secrets)
        else:
            _enter(v, DATE, ctx)


def _meta(meta: dict[str, Any], ctx: Ctx) -> None:
    """Resource.meta: lastUpdated shifted, tags and security labels (Codings) passed by."""
    for k, v in meta.items():
        if (k == "tag" or k == "security") and type(v) is list and _codings(v):
            continue
        _value(meta, k, DATE if k == "lastUpdated" else PLAIN, ctx)


def _value(node: dict[str, Any], k: str, kind: int, ctx: Ctx) -> None:
    """node[k] under a plain or date key, whatever its JSON type, as the generic loop treats it."""
    v = node[k]
    if type(v) is str:
        node[k] = _plain(v, ctx) if kind == PLAIN else _string(kind, v, ctx)
    else:
        _enter(v, kind, ctx)


def _enter(v: Any, kind: int, ctx: Ctx) -> None:
    """A dict or list under a key of `kind` (anything else is left as it is)."""
    tv = type(v)
    if tv is dict:
        if kind == PLAIN:
            element(v, ctx)
        else:
            walk(v, ctx)
    elif tv is list:
        walk_list(v, kind, ctx)


_CODING_KEYS: Final = frozenset({"system", "version", "code", "display", "userSelected"})


def _only(v: dict[str, Any], allowed: frozenset[str]) -> bool:
    """Whether every key of `v` is one of `allowed` (`v.keys() <= allowed`, without a keys view
    and a rich comparison per call: this runs for nearly every element of every resource)."""
    for k in v:  # noqa: SIM110 - as in _flat
        if k not in allowed:
            return False
    return True


def _primitive(x: Any, none_too: bool) -> bool:
    """Whether `x` is a JSON primitive (None too where `none_too`) with no Patient reference in it."""
    tx = type(x)
    if tx is str:
        return "Patient/" not in x  # a Patient reference, however odd, is walked and rewritten
    return tx is int or tx is float or tx is bool or (none_too and x is None)


def _flat(v: dict[str, Any]) -> bool:
    """Whether every value of `v` is a JSON primitive with no Patient reference in it (such a
    datatype holds nothing to change; anything else is not that datatype and is walked)."""
    for x in v.values():  # noqa: SIM110 - a plain loop: no generator per call on the hot path
        if not _primitive(x, True):
            return False
    return True


def _is_coding(c: Any) -> bool:
    """Whether `c` is a Coding and only that: Coding keys alone (a code or a system among them),
    primitive values. A Coding with anything more (an extension, say) is walked like any element."""
    if type(c) is not dict:
        return False
    for k, x in c.items():  # keys and values in one pass
        if k not in _CODING_KEYS or not _primitive(x, False):
            return False
    return "code" in c or "system" in c


def _codings(items: list[Any]) -> bool:
    """Whether every item is a Coding and only that (`_is_coding`)."""
    for c in items:  # noqa: SIM110 - as in _flat
        if not _is_coding(c):
            return False
    return True


def walk_list(items: list[Any], kind: int, ctx: Ctx) -> None:
    if kind == PLAIN:
        for i, x in enumerate(items):
            tx = type(x)
            if tx is dict:
                if len(x) == 1:  # as in `walk`: a one-key Reference, Codings alone
                    ref = x.get("reference")
                    if type(ref) is str:
                        _reference(x, ref, ctx)
                        continue
                    coding = x.get("coding")
                    if type(coding) is list and _codings(coding):
                        continue
                element(x, ctx)
            elif tx is str:
                if "Patient/" in x or (ctx.shift and len(x) >= 10 and x[4] == "-"):
                    items[i] = _plain(x, ctx)
            elif tx is list:
                walk_list(x, kind, ctx)
        return
    for i, x in enumerate(items):
        tx = type(x)
        if tx is dict:
            walk(x, ctx)
        elif tx is str:
            if kind == TEXT and ctx.unchecked:
                items[i] = ""
            else:
                items[i] = _string(kind, x, ctx)
        elif tx is list:
            walk_list(x, kind, ctx)


_PEOPLE: Final = frozenset({"RelatedPerson", "Practitioner", "Person"})
_PERSON_FIELDS: Final = ("name", "telecom", "photo", "contact")


def strip_people(res: dict[str, Any]) -> None:
    """A contained resource that describes a person loses that person's identity too (one whose
    resourceType is not a string names no type: the reader checks only the top-level resource)."""
    rtype = res.get("resourceType")
    if type(rtype) is str and (rtype in _PEOPLE or rtype == "Patient"):
        for k in (*_PERSON_FIELDS, "address", "extension"):
            res.pop(k, None)
        if rtype == "Patient":
            res.pop("birthDate", None)  # a contained patient's age is not grouped: drop its birth date
    res.pop("text", None)


def _note(n: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(n.get("text"), str):
        out["text"] = clean_text(n["text"], ctx)
    if isinstance(n.get("time"), str):
        out["time"] = shift_fhir(n["time"], ctx.shift) or n["time"] if ctx.shift else n["time"]
    return out


def identifiers(value: Any, ctx: Ctx) -> Any:
    items = value if isinstance(value, list) else [value]
    out = []
    for ident in items:
        if not isinstance(ident, dict):
            continue
        ident = {k: v for k, v in ident.items() if k in ("use", "type", "system", "value", "period")}
        if "value" in ident:
            system = str(ident.get("system", ""))
            raw = str(ident["value"])
            ident["value"] = identifier_value(ctx.secrets, system, raw, _is_accession(ident))
        if isinstance(ident.get("type"), dict):
            ident["type"].pop("text", None)
            codings = ident["type"].get("coding")
            if not (_only(ident["type"], _CONCEPT_KEYS) and (codings is None or _codings(codings))):
                walk(ident["type"], ctx)  # anything in it beyond plain Codings is walked
        if isinstance(ident.get("period"), dict):
            walk(ident["period"], ctx)
        out.append(ident)
    return out if isinstance(value, list) else (out[0] if out else None)


def identifier_value(secrets: SourceSecrets, system: str, raw: str, accession: bool) -> str:
    """An Identifier's value pseudonymized: a DICOM UID as DICOM UIDs are (so ImagingStudy joins
    the images), an accession number as in DICOM, any other by its system."""
    if system == _DICOM_UID_SYSTEM:
        uid = raw[8:] if raw.startswith("urn:oid:") else raw
        return ("urn:oid:" if raw.startswith("urn:oid:") else "") + secrets.uid(uid)
    if accession:
        return secrets.pseudonym(raw, "accession", 16).upper()
    return _identifier_pseudonym(secrets, system, raw)


_IDS: Final[dict[tuple[SourceSecrets, str, str], str]] = {}


def _identifier_pseudonym(secrets: SourceSecrets, system: str, value: str) -> str:
    key = (secrets, system, value)
    out = _IDS.get(key)
    if out is None:
        out = remember(_IDS, key, secrets.pseudonym(value, "identifier:" + system))
    return out


def _is_accession(ident: dict[str, Any]) -> bool:
    t = ident.get("type")
    if not isinstance(t, dict):
        return False
    return any(isinstance(c, dict) and c.get("code") == "ACSN" for c in t.get("coding") or [])
