"""The DICOM de-identification engine, driven by PS3.15 Annex E (see `annex_e`).

`deid_dataset(ds, secrets, policy)` changes one dataset in place:
- every attribute of Table E.1-1 gets its action (D Z X K C U, compound actions resolved per IOD),
  at any depth of nesting; attributes the table does not list are kept, except that person names
  get a dummy, dates are shifted with the patient's secret shift (so that no unshifted date betrays
  the shift), instance UIDs are remapped, and text is checked against the patient's own identifiers;
- private attributes are removed (or, with Retain Safe Private, kept only where allowlisted);
  curve and overlay groups are removed whole;
- PatientID and PatientName become the patient's keyed pseudonym (the same as in FHIR and
  biosignals of the source), AccessionNumber and StudyID keyed pseudonyms (a dummy that joins);
- PatientIdentityRemoved, DeidentificationMethod, DeidentificationMethodCodeSequence (CID 7050) and
  LongitudinalTemporalInformationModified are set; file meta follows the new SOP Instance UID.
Images at risk of burned-in text raise HeldForReview before anything is changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import PIXEL_KEYWORDS, Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID_dictionary,
)

from medhub import __version__
from medhub.ingest.records import HeldForReview
from medhub.privacy.deid.annex_e import actions_for, method_codes, pattern_action, resolve_compound
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.dates import age_years, group_as, shift_da, shift_dt
from medhub.privacy.deid.text import Matcher, cleaned_text

TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
MAX_LEN = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "AE": 16, "CS": 16, "PN": 64}
_DUMMY = {
    "AE": "ANONYMIZED",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "PN": "ANONYMIZED",
    "UR": "",
}
# UIDs that name things, not instances: kept even when the table or the default says remap.
_KEEP_UID_TAGS = frozenset(
    {
        0x00080016,  # SOP Class UID
        0x00081150,  # Referenced SOP Class UID
        0x0008010C,  # Coding Scheme UID
        0x0008010D,  # Context Group Extension Creator UID
        0x00080117,  # Context UID
        0x00080118,  # Mapping Resource UID
        0x00041510,  # Referenced SOP Class UID in File
        0x00041512,  # Referenced Transfer Syntax UID in File
    }
)
_STANDARD_ROOTS = ("1.2.840.10008.",)
# Z attributes given a keyed pseudonym instead of an empty value (E.1.1 allows a dummy): they
# still join DICOM to FHIR ImagingStudy and to each other, and identify nobody.
_PSEUDO_Z = {0x00080050: ("accession", 16), 0x00200010: ("study-id", 16)}

_US_CLASSES = ("1.2.840.10008.5.1.4.1.1.6.", "1.2.840.10008.5.1.4.1.1.3.1")
_SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture, and .1-.4 its multi-frame kinds
_VL = "1.2.840.10008.5.1.4.1.1.77."  # Visible Light: endoscopy, microscopy, photographs
# Modalities whose images often carry burned-in text: held when BurnedInAnnotation is not "NO".
RISKY_MODALITIES = frozenset({"XA", "RF", "ES", "XC", "GM", "SM", "OT", "DOC", "OP", "IO", "PX", "EPS"})
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


@dataclass
class _Ctx:
    actions: dict[int, str]
    policy: Policy
    secrets: SourceSecrets
    shift: int
    matcher: Matcher
    sop_class: str
    stats: Counter
    overlay_action: str = "X"


def _item(ds: Dataset, tag: int) -> DataElement | RawDataElement | None:
    """`ds.get_item(tag)` for an int tag, without its Tag() conversion: the element as held (raw
    or converted), a deferred one read and converted as get_item does."""
    elem = ds._dict.get(tag)
    if isinstance(elem, RawDataElement) and elem.value is None:
        return ds.get_item(tag)
    return elem


def _first(ds: Dataset, tag: int) -> str:
    vals = _values(ds, tag)
    return vals[0].strip() if vals else ""


def burned_in_risk(ds: Dataset) -> str | None:
    """Why this image may carry burned-in text that names the patient, or None."""
    if not any(t in ds for t in _PIXEL_TAGS):
        return None
    bia = _first(ds, 0x00280301).upper()
    sop = _first(ds, 0x00080016)
    modality = _first(ds, 0x00080060).upper()
    if bia == "YES":
        return "BurnedInAnnotation is YES"
    if modality in ("US", "IVUS") or sop.startswith(_US_CLASSES):
        return "ultrasound image (annotations are usually burned into the pixels)"
    if sop == _SC or sop.startswith(_SC + "."):
        return "secondary capture image (often a screenshot with text)"
    if sop.startswith(_VL):
        return "visible light image (photograph, endoscopy or microscopy: faces, labels and text)"
    if bia != "NO" and (not modality or modality in RISKY_MODALITIES):
        what = "absent" if not bia else repr(bia)
        return f"BurnedInAnnotation {what} for modality {modality or 'unknown'}, at risk of burned-in text"
    return None


def _patient_key(ds: Dataset) -> str:
    pid = _first(ds, 0x00100020)
    if pid:
        return pid
    for tag, kw in ((0x00100010, "PatientName"), (0x0020000D, "StudyInstanceUID")):
        v = _first(ds, tag)
        if v:
            return f"{kw}:{v}"
    return ""


_NAME_TAGS = (0x00100010, 0x00101001, 0x00101005, 0x00101060, 0x00102297)  # patient, other, birth, mother's
_ID_TAGS = (
    0x00100020,
    0x00101000,
    0x00080050,
    0x00380010,
    0x00101090,
)  # ids, accession, admission, record locator
_OTHER_TAGS = (0x00101040, 0x00102154)  # address, telephone numbers


@lru_cache(maxsize=4096)
def _matcher(names: tuple[str, ...], ids: tuple[str, ...], others: tuple[str, ...]) -> Matcher:
    return Matcher(names, ids, others)


def _with_known(matcher: Matcher, other: Matcher | None) -> Matcher:
    return _union(matcher, other) if other is not None else matcher


@lru_cache(maxsize=4096)
def _union(matcher: Matcher, other: Matcher) -> Matcher:
    """One matcher per (header, FHIR) pair of matchers: both are built once and never changed, so
    the instances of one patient share the union (and the cache of cleaned text below)."""
    return matcher | other


def patient_matcher(ds: Dataset) -> Matcher:
    """The patient's own identifiers, as read from the header before anything is removed
    (cached: the instances of one patient share it)."""
    names = [v for t in _NAME_TAGS for v in _values(ds, t)]
    ids = [v for t in _ID_TAGS for v in _values(ds, t)]
    seq = _item(ds, 0x00101002)  # Other Patient IDs Sequence
    if seq is not None:
        for item in ds[0x00101002].value or []:
            ids += _values(item, 0x00100020)
    others = [v for t in _OTHER_TAGS for v in _values(ds, t)]
    for b in _values(ds, 0x00100030):  # birth date, as written and in common text forms
        if len(b) == 8 and b.isdigit():
            others += [b] + [f"{b[:4]}{sep}{b[4:6]}{sep}{b[6:]}" for sep in "-./"]
    return _matcher(tuple(names), tuple(ids), tuple(others))


def _vr(ds: Dataset, tag: int, raw: object = None) -> str:
    raw = _item(ds, tag) if raw is None else raw
    vr = getattr(raw, "VR", None)
    if vr:
        return str(vr)
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _remap_uid(value: str, ctx: _Ctx) -> str:
    v = str(value).strip().rstrip("\x00")
    if not v or v in UID_dictionary or v.startswith(_STANDARD_ROOTS):
        return v
    return ctx.secrets.uid(v)


_SINGLE = frozenset({"LT", "ST", "UT", "UR"})  # text VRs where a backslash is a character, not a separator


def _values(ds: Dataset, tag: int, raw: object = None, vr: str = "") -> list[str]:
    """The element's values as strings. Plain ASCII raw values are decoded here, without pydicom's
    conversion of the element (most values are, and this is the engine's hot path); others (other
    character sets, already converted elements) go through pydicom."""
    raw = _item(ds, tag) if raw is None else raw
    value = getattr(raw, "value", None)
    if isinstance(value, bytes) and not isinstance(raw, DataElement):
        if value.isascii() and b"\x1b" not in value:
            text = value.decode("ascii").rstrip("\x00 ")
            if not text:
                return []
            return [text] if (vr or getattr(raw, "VR", "")) in _SINGLE else text.split("\\")
        value = ds[tag].value
    if value is None or value == "":
        return []
    if isinstance(value, (MultiValue, list)):
        return [str(x) for x in value]
    return [str(value)]


def _set(ds: Dataset, tag: int, vr: str, values: list[str] | str | None, old: object = None) -> None:
    """Replace an element's value with a new element (the old one is never converted). ASCII text
    is encoded here as a raw element in the dataset's own encoding, which pydicom writes as is."""
    if isinstance(values, list):
        values = (
            "\\".join(values) if vr in _STRING_VRS else (values[0] if len(values) == 1 else values or None)
        )
    old = _item(ds, tag) if old is None else old
    if (
        vr in _STRING_VRS
        and (values is None or (isinstance(values, str) and values.isascii()))
        and old is not None
        and not isinstance(old, DataElement)
    ):
        data = (values or "").encode("ascii")
        if len(data) % 2:
            data += b"\x00" if vr == "UI" else b" "
        elem = RawDataElement(Tag(tag), vr, len(data), data, 0, old.is_implicit_VR, old.is_little_endian)
        if type(ds) is Dataset and not (tag >> 16) & 1 and tag not in PIXEL_KEYWORDS:
            ds._dict[elem.tag] = elem  # all that Dataset.__setitem__ does for such an element
        else:
            ds[tag] = elem
        return
    if (
        isinstance(values, str)
        and vr in _STRING_VRS
        and "\\" in values
        and vr not in ("LT", "ST", "UT", "UR")
    ):
        values = values.split("\\")
    ds[tag] = DataElement(tag, vr, values if values is not None else ("" if vr in _STRING_VRS else None))


def _map(ds: Dataset, tag: int, vr: str, fn, raw: object = None) -> bool:  # noqa: ANN001 - fn: str -> str
    """Apply fn to each value; write back only when something changed. Returns whether it did."""
    old = _values(ds, tag, raw, vr)
    if not old:
        return False
    new = [x for x in (fn(v) for v in old) if x is not None]
    if new == old:
        return False
    _set(ds, tag, vr, new, raw)
    return True


def _clean_text(value: str, vr: str, ctx: _Ctx) -> str:
    new = cleaned_text(ctx.matcher, ctx.shift if ctx.policy.shift_dates else None, value)
    if new != value:
        ctx.stats["text cleaned"] += 1
        limit = MAX_LEN.get(vr)
        if limit and len(new) > limit:
            new = new[:limit]
    return new


def _dummy(vr: str) -> object:
    if vr in _DUMMY:
        return _DUMMY[vr]
    if vr in TEXT_VRS:
        return "ANONYMIZED"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"):
        return 0
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b"\x00\x00"
    return None


def _apply(ds: Dataset, tag: int, vr: str, action: str, ctx: _Ctx, raw: object = None) -> bool:
    """Apply one action; whether the element changed (or went). A sequence counts as changed when
    anything in its items did, also when it was parsed at read time (undefined length) and so is
    the same element object as before: the caller may put back the bytes of an enclosing sequence
    as read only when nothing inside it changed."""
    if action == "X":
        del ds[tag]
        ctx.stats["removed"] += 1
        return True
    raw = _item(ds, tag) if raw is None else raw
    try:
        inside = _apply_value(ds, tag, vr, action, ctx, raw)
    except Exception:  # noqa: BLE001 - a value that cannot be read is dropped, never passed on unread
        del ds[tag]
        ctx.stats["undecodable removed"] += 1
        return True
    return inside or _item(ds, tag) is not raw


def _apply_value(ds: Dataset, tag: int, vr: str, action: str, ctx: _Ctx, raw: object) -> bool:
    """Apply a value action; True where a sequence's items changed (the element may be the same
    object), else False (a changed value is a new element)."""
    if vr == "SQ":
        elem = ds[tag]
        if action == "Z":
            if elem.value:
                elem.value = Sequence()
                ctx.stats["emptied"] += 1
                return True
            return False
        # K, C, D, U on a sequence: keep its items, de-identified in turn
        changed = [_walk(item, ctx) for item in elem.value or []]
        if any(changed):
            return True
        if isinstance(raw, RawDataElement):
            ds[tag] = raw  # nothing inside changed: the bytes as read, which write fastest
        return False
    if action == "Z":
        old = _values(ds, tag, raw, vr)
        if tag in _PSEUDO_Z and old:
            kind, length = _PSEUDO_Z[tag]
            _set(ds, tag, vr, ctx.secrets.pseudonym("\\".join(old), kind, length).upper(), raw)
            ctx.stats["pseudonymized"] += 1
        elif old or len(getattr(raw, "value", b"") or b""):
            _set(ds, tag, vr, None, raw)
            ctx.stats["emptied"] += 1
        return False
    if action == "U" or vr == "UI":
        if tag not in _KEEP_UID_TAGS and _map(ds, tag, "UI", lambda v: _remap_uid(v, ctx), raw):
            ctx.stats["uids remapped"] += 1
        return False
    if vr in ("DA", "DT") and (action == "C" or (action in ("D", "T") and ctx.policy.shift_dates)):
        fn = shift_da if vr == "DA" else shift_dt
        old = _values(ds, tag, raw, vr)
        if old:
            new = [x for x in (fn(v, ctx.shift) for v in old) if x is not None]
            _set(ds, tag, vr, new or None, raw)
            ctx.stats["dates shifted"] += 1
        return False
    if action == "D":
        if vr == "TM" and ctx.policy.shift_dates:
            return False  # whole-day shifts leave times of day as they are
        _set(ds, tag, vr, _dummy(vr), raw)  # type: ignore[arg-type]
        ctx.stats["replaced"] += 1
        return False
    # K, C and T (text check) keep the value, cleaned where it is text
    if vr == "AS":
        _map(ds, tag, vr, group_as, raw)
    elif vr == "AE" and action == "C":
        _map(ds, tag, vr, lambda v: ctx.secrets.pseudonym(v, "ae", 16).upper(), raw)
    elif vr in TEXT_VRS or vr == "PN":
        _map(ds, tag, vr, lambda v: _clean_text(v, vr, ctx), raw)
    return False


@lru_cache(maxsize=2)
def _defaults(shift_dates: bool) -> dict[str, str]:
    """What happens to an attribute Table E.1-1 does not list, by VR (absent: kept as it is)."""
    out = {"SQ": "K", "UI": "U", "PN": "D"} | dict.fromkeys(TEXT_VRS, "T")
    if shift_dates:
        out |= {"DA": "C", "DT": "C"}
    return out


def _private_kept(ds: Dataset, tag: int, ctx: _Ctx) -> bool:
    if not ctx.policy.retain_safe_private or not ctx.policy.safe_private:
        return False
    group, elem = tag >> 16, tag & 0xFFFF
    if elem < 0x1000:  # private creator: kept while a kept element uses its block
        return any(
            (t >> 16) == group and ((t & 0xFFFF) >> 8) == elem and _private_kept(ds, int(t), ctx)
            for t in ds.keys()  # noqa: SIM118 - a Dataset iterates elements, not tags
            if (int(t) & 0xFFFF) >= 0x1000
        )
    creator = ds.get((group, elem >> 8))
    if creator is None:
        return False
    name = str(creator.value).strip().upper()
    return (name, elem & 0xFF) in ctx.policy.safe_private


def _walk(ds: Dataset, ctx: _Ctx) -> bool:
    """De-identify one dataset (or sequence item) in place; whether anything in it changed."""
    overlay_action = ctx.overlay_action
    defaults = _defaults(ctx.policy.shift_dates)
    shift = ctx.shift if ctx.policy.shift_dates else None  # as _clean_text passes it
    some_private_kept = ctx.policy.retain_safe_private and ctx.policy.safe_private  # else none is
    changed = False
    for tag, raw in list(ds.items()):
        t = int(tag)
        group = t >> 16
        if group & 1:
            if some_private_kept and _private_kept(ds, t, ctx):
                vr = _vr(ds, t, raw)
                changed = _apply(ds, t, vr, "T" if vr != "SQ" else "K", ctx, raw) or changed
            else:
                del ds[tag]
                ctx.stats["private removed"] += 1
                changed = True
            continue
        if 0x5000 <= group <= 0x50FF or (0x6000 <= group <= 0x60FF and overlay_action == "X"):
            del ds[tag]  # curves and overlays go whole: a half-removed overlay is invalid
            ctx.stats["removed"] += 1
            changed = True
            continue
        if group == 0x0002:
            continue
        vr = getattr(raw, "VR", None) or _vr(ds, t, raw)
        action = ctx.actions.get(t)
        if action is None:
            action = defaults.get(vr)
            if action is None:
                continue
        elif "/" in action:
            action = resolve_compound(action, t, ctx.sop_class)
        if action in _TEXT_ACTIONS and vr in _CHECKED_VRS and _text_unchanged(raw, vr, ctx, shift):
            continue
        # the dataset's own key object: pydicom finds it by identity, an int costs a Python __eq__
        changed = _apply(ds, tag, vr, action, ctx, raw) or changed
    return changed


_TEXT_ACTIONS = frozenset({"K", "C", "T"})
_CHECKED_VRS = TEXT_VRS | {"PN"}  # the VRs whose values K, C and T check as text (_apply_value)


def _text_unchanged(raw: object, vr: str, ctx: _Ctx, shift: int | None) -> bool:
    """Whether K, C or T leave this raw ASCII text element as it is (every value already clean):
    the check of `_apply` without its calls, for the most common element of a header. False where
    `_apply` must decide (a converted element, other character sets, a value that changes)."""
    if type(raw) is not RawDataElement:
        return False
    value = raw.value
    if type(value) is not bytes or not value.isascii() or b"\x1b" in value:
        return False
    text = value.decode("ascii").rstrip("\x00 ")
    if not text:
        return True  # no values: nothing to check
    matcher = ctx.matcher
    try:
        if vr in _SINGLE:
            return cleaned_text(matcher, shift, text) == text
        return all(cleaned_text(matcher, shift, v) == v for v in text.split("\\"))
    except Exception:  # noqa: BLE001 - _apply decides (and drops what cannot be read)
        return False


def _add_age(ds: Dataset) -> None:
    """Patient's Age from birth and study dates when the header lacks it (the birth date is removed)."""
    if _first(ds, 0x00101010):
        return
    born = _first(ds, 0x00100030)
    at = _first(ds, 0x00080020) or _first(ds, 0x00080021) or _first(ds, 0x00080023)
    try:
        b = date(int(born[:4]), int(born[4:6]), int(born[6:8]))
        a = date(int(at[:4]), int(at[4:6]), int(at[6:8]))
    except (ValueError, IndexError):
        return
    years = age_years(b, a)
    if 0 <= years < 1000:
        ds.add_new(0x00101010, "AS", group_as(f"{years:03d}Y"))


_META_DROP = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)  # AE titles, private information


def _file_meta(ds: Dataset) -> None:
    """File meta that follows the new SOP Class/Instance UIDs, names medhub as the implementation and
    drops the sender's AE titles and private information; the transfer syntax is kept. The 128-byte
    preamble is zeroed: pydicom writes back whatever the sender put there (a dual-format file can
    carry a TIFF header or any other bytes), and nothing in it is needed."""
    if getattr(ds, "preamble", None) is not None:
        ds.preamble = b"\x00" * 128
    meta = getattr(ds, "file_meta", None)
    if meta is None or 0x00020010 not in meta:  # read without file meta: keep the encoding it was read in
        implicit, little = getattr(ds, "original_encoding", None) or (True, True)
        meta = FileMetaDataset()
        meta.add_new(
            0x00020010,
            "UI",
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian,
        )
        ds.file_meta = meta
    for tag in _META_DROP:
        if tag in meta:
            del meta[tag]
    for tag, vr, value in (
        (0x00020002, "UI", _first(ds, 0x00080016) or _first(meta, 0x00020002)),
        (0x00020003, "UI", _first(ds, 0x00080018)),
        (0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID),
        (0x00020013, "SH", f"MEDHUB_{__version__}"[:16]),
    ):
        if tag in meta:
            _set(meta, tag, vr, value)
        else:
            meta.add_new(tag, vr, value)


@lru_cache(maxsize=64)
def _method(policy: Policy) -> tuple[list[str], tuple[tuple[str, str], ...]]:
    codes = tuple(method_codes(policy))
    return [f"medhub {__version__} PS3.15 Annex E"] + [m[:64] for _c, m in codes[1:]], codes


def _method_sequence(codes: tuple[tuple[str, str], ...]) -> Sequence:
    seq = []
    for code, meaning in codes:
        item = Dataset()
        item.add_new(0x00080100, "SH", code)
        item.add_new(0x00080102, "SH", "DCM")
        item.add_new(0x00080104, "LO", meaning)
        seq.append(item)
    return Sequence(seq)


@lru_cache(maxsize=64)
def _method_sequence_bytes(codes: tuple[tuple[str, str], ...], implicit: bool, little: bool) -> bytes:
    """The code sequence's value, encoded once per policy and encoding (defined-length items)."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = little, implicit
    for item in _method_sequence(codes):
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = little, implicit
        write_dataset(buf, item)
        data = buf.getvalue()
        out.write_tag(Tag(0xFFFEE000))
        out.write_UL(len(data))
        out.write(data)
    return out.getvalue()


def _add_method_sequence(ds: Dataset, codes: tuple[tuple[str, str], ...], like: object) -> None:
    """Add De-identification Method Code Sequence: as a raw element in the dataset's own encoding
    where one is known (pydicom writes it as is), else as a Sequence."""
    tag = 0x00120064
    if isinstance(like, RawDataElement) and like.is_implicit_VR is not None:
        data = _method_sequence_bytes(codes, bool(like.is_implicit_VR), bool(like.is_little_endian))
        ds[tag] = RawDataElement(
            Tag(tag), "SQ", len(data), data, 0, like.is_implicit_VR, like.is_little_endian
        )
    else:
        ds.add_new(tag, "SQ", _method_sequence(codes))


def deid_dataset(
    ds: Dataset,
    secrets: SourceSecrets,
    policy: Policy,
    stats: Counter | None = None,
    known: Callable[[str], Matcher | None] | None = None,
) -> Dataset:
    """De-identify `ds` in place and return it; HeldForReview for an image at risk of burned-in text.

    `known(patient_id)` gives the identifiers this source already sent for the patient in other
    modalities (a FHIR Patient's romanized name, say), so free text is checked against those too."""
    if policy.hold_burned_in:
        risk = burned_in_risk(ds)
        if risk:
            raise HeldForReview(risk)
    stats = Counter() if stats is None else stats
    key = _patient_key(ds)
    ctx = _Ctx(
        actions=actions_for(policy),
        policy=policy,
        secrets=secrets,
        shift=secrets.shift_days(key) if policy.shift_dates else 0,
        matcher=_with_known(patient_matcher(ds), known(key) if known and key else None),
        sop_class=_first(ds, 0x00080016),
        stats=stats,
        overlay_action=pattern_action("overlay-data", policy),
    )
    if policy.retain_patient_characteristics:
        _add_age(ds)
    pseudo = secrets.patient(key)
    _walk(ds, ctx)
    for tag, vr, value in ((0x00100020, "LO", pseudo), (0x00100010, "PN", pseudo), (0x00120062, "CS", "YES")):
        if tag in ds:
            _set(ds, tag, vr, value)
        else:
            ds.add_new(tag, vr, value)
    like = _item(ds, 0x00080018)  # an element as read: its encoding is the dataset's
    method, codes = _method(policy)
    ds.add_new(0x00120063, "LO", method)  # De-identification Method
    _add_method_sequence(ds, codes, like)
    if policy.shift_dates:
        ds.add_new(0x00280303, "CS", "MODIFIED")  # Longitudinal Temporal Information Modified
    _file_meta(ds)
    return ds


def _truncated(ds: Dataset) -> str | None:
    """pydicom reads a truncated file without complaint, keeping the declared length of the last
    element: compare it with the bytes actually there."""
    keys = list(ds.keys())
    if not keys:
        return "no data elements"
    raw = ds.get_item(keys[-1])
    length = getattr(raw, "length", None)
    value = getattr(raw, "value", None)
    if isinstance(length, int) and length != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < length:
        return f"file ends inside {keys[-1]}: {len(value)} of {length} bytes (truncated)"
    return None


def structural_problem(ds: Dataset) -> str | None:
    """Why a dataset read from a file cannot be a complete instance (a truncated file reads partly).
    Call it on a dataset as read, before any change."""
    cut = _truncated(ds)
    if cut:
        return cut
    for kw in ("SOPClassUID", "SOPInstanceUID"):
        if not str(ds.get(kw, "") or "").strip():
            return f"{kw} missing (truncated or not a composite instance)"
    if "Rows" in ds and "Columns" in ds and not any(t in ds for t in _PIXEL_TAGS):
        return "an image header without pixel data (truncated file?)"
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if "PixelData" in ds and ts is not None and not pydicom.uid.UID(ts).is_compressed:
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            bits = int(ds.BitsAllocated)
            expected = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * frames * bits // 8
        except (AttributeError, TypeError, ValueError):
            return None
        got = len(ds.get_item(0x7FE00010).value or b"")
        if got < expected:
            return f"pixel data holds {got} bytes, {expected} expected (truncated file?)"
    return None


def read_dicom(path: str) -> Dataset:
    """Read a DICOM file, also one written without file meta (as some RT exports are)."""
    try:
        return pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError:
        ds = pydicom.dcmread(path, force=True)
        if "SOPClassUID" not in ds:
            msg = f"{path}: not a DICOM file (no preamble, no SOP Class UID)"
            raise pydicom.errors.InvalidDicomError(msg) from None
        return ds
