"""The DICOM engine: no planted identifier survives, output stays valid, UIDs and dates stay consistent."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pydicom
import pytest
from pydicom.dataset import Dataset

from conftest import shared_sub
from deid_fixtures import file_bytes, leaked, planted_dataset, roundtrip, with_file_meta
from medhub.config import Settings
from medhub.ingest.records import DicomItem, HeldForReview
from medhub.lake.dicom_bytes import part10_bytes
from medhub.privacy.deid.annex_e import resolve_compound
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.dicom import burned_in_risk, deid_dataset, patient_matcher, read_dicom
from medhub.privacy.gate import make_gate


def _d(s: str) -> date:
    return date(int(s[:4]), int(s[4:6]), int(s[6:8]))


def test_planted_identifiers_do_not_survive(settings: Settings) -> None:
    ds, planted = planted_dataset()
    assert leaked(with_file_meta(ds), planted)  # the answer key is found before de-identification
    out = make_gate(settings, "hosp-a")(DicomItem("x.dcm", ds)).dataset
    back = roundtrip(out)
    assert leaked(back, planted) == []
    assert not any(e.tag.is_private for e in back.iterall())
    assert back.PatientIdentityRemoved == "YES"
    assert back.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = {i.CodeValue for i in back.DeidentificationMethodCodeSequence}
    assert {"113100", "113105", "113107", "113108", "113109"} <= codes
    assert all(i.CodingSchemeDesignator == "DCM" for i in back.DeidentificationMethodCodeSequence)


def test_output_is_valid_dicom(settings: Settings) -> None:
    ds, _ = planted_dataset()
    out = roundtrip(make_gate(settings, "hosp-a")(DicomItem("x.dcm", with_file_meta(ds))).dataset)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPClassUID == out.SOPClassUID
    for elem in out.iterall():
        if elem.VR == "UI" and elem.value:
            vals = elem.value if isinstance(elem.value, list | pydicom.multival.MultiValue) else [elem.value]
            for v in vals:
                assert pydicom.uid.UID(v).is_valid, (elem.keyword, v)
    assert out.SOPInstanceUID.startswith("2.25.")
    assert len(out.PatientID) <= 64 and out.PatientID
    assert out.pixel_array.shape == (4, 4)  # pixel data untouched and decodable
    # Type 2 attributes emptied, not removed; Type 3 identifying ones removed
    assert "ReferringPhysicianName" in out and out.ReferringPhysicianName == ""
    assert "PatientBirthDate" in out and out.PatientBirthDate == ""
    assert "InstitutionAddress" not in out and "OtherPatientIDsSequence" not in out


def test_retained_characteristics_and_device(settings: Settings) -> None:
    ds, _ = planted_dataset()
    out = make_gate(settings, "hosp-a")(DicomItem("x.dcm", ds)).dataset
    assert out.PatientSex == "M" and out.PatientAge == "063Y"
    assert out.StationName == "CT01" and out.DeviceSerialNumber == "SN-4455"
    assert out.SeriesDescription == "AXIAL 5mm"  # clean descriptors keeps harmless text
    assert "CHEST CT for" in out.StudyDescription and "HONG" not in out.StudyDescription
    assert out.StudyTime == "101500"  # whole-day shifts leave times of day


def test_age_over_89_grouped_and_filled_from_birth_date(settings: Settings) -> None:
    ds, _ = planted_dataset(birth="19200101")
    del ds.PatientAge
    out = make_gate(settings, "hosp-a")(DicomItem("x.dcm", ds)).dataset
    assert out.PatientAge == "090Y"
    ds2, _ = planted_dataset()
    ds2.PatientAge = "097Y"
    assert make_gate(settings, "hosp-a")(DicomItem("x.dcm", ds2)).dataset.PatientAge == "090Y"


def test_dates_shift_by_one_secret_amount_per_patient(settings: Settings) -> None:
    a1, _ = planted_dataset(study_date="20240301")
    a2, _ = planted_dataset(study_date="20240415")
    b1, _ = planted_dataset(mrn="MRN0099", study_date="20240301")
    gate = make_gate(settings, "hosp-a")
    o1, o2, p1 = (gate(DicomItem("x", d)).dataset for d in (a1, a2, b1))
    assert (_d(o2.StudyDate) - _d(o1.StudyDate)).days == 45  # interval kept
    assert o1.StudyDate != "20240301"
    assert _d(o1.StudyDate) < date(2024, 3, 1)
    assert o1.StudyDate == o1.SeriesDate == o1.AcquisitionDate == o1.ContentDate
    assert o1.StudyDate != p1.StudyDate  # another patient, another shift (with overwhelming odds)
    assert "2024-03-01" not in o1.ImageComments  # dates in free text are shifted too


def test_uids_remapped_consistently_and_references_survive(settings: Settings) -> None:
    first, _ = planted_dataset()
    second, _ = planted_dataset(
        study_uid=first.StudyInstanceUID,
        series_uid=first.SeriesInstanceUID,
        referenced_uid=first.SOPInstanceUID,
    )
    gate = make_gate(settings, "hosp-a")
    o1 = gate(DicomItem("1", first)).dataset
    o2 = gate(DicomItem("2", second)).dataset
    assert o1.StudyInstanceUID == o2.StudyInstanceUID and o1.SeriesInstanceUID == o2.SeriesInstanceUID
    assert o2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == o1.SOPInstanceUID
    assert o2.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    other = make_gate(settings, "hosp-b")(DicomItem("3", planted_dataset(study_uid="1.2.3.4")[0])).dataset
    again = gate(DicomItem("4", planted_dataset(study_uid="1.2.3.4")[0])).dataset
    assert other.StudyInstanceUID != again.StudyInstanceUID  # keyed per source


def test_accession_pseudonym_joins_and_patient_pseudonym(settings: Settings) -> None:
    ds, _ = planted_dataset()
    out = make_gate(settings, "hosp-a")(DicomItem("x", ds)).dataset
    secrets = source_secrets(settings, "hosp-a")
    assert out.PatientID == secrets.patient("MRN0042") == str(out.PatientName)
    assert out.AccessionNumber == secrets.pseudonym("ACC77881", "accession", 16).upper()
    assert out.RequestAttributesSequence[0].AccessionNumber == out.AccessionNumber


def test_private_tags_removed_unless_allowlisted(settings: Settings) -> None:
    ds, _ = planted_dataset()
    block = ds.private_block(0x0019, "SAFE VENDOR", create=True)
    block.add_new(0x20, "DS", "1.5")  # a safe acquisition parameter
    block.add_new(0x21, "LO", "HONG GILDONG")  # not allowlisted
    policy = Policy(
        retain_safe_private=True, safe_private=frozenset({("SAFE VENDOR", 0x20), ("ACME 1.0", 0x10)})
    )
    out = deid_dataset(ds, source_secrets(settings, "s"), policy)
    kept = {(e.tag.group, e.tag.element): e.value for e in out if e.tag.is_private}
    assert kept[(0x0019, 0x1020)] == "1.5"
    assert (0x0019, 0x1021) not in kept
    assert kept[(0x0009, 0x1010)] == "***"  # allowlisted, yet cleaned of the patient's name
    assert (0x0009, 0x0010) in kept and (0x0019, 0x0010) in kept  # their creators stay
    assert 0x113111 not in kept
    assert "113111" in {i.CodeValue for i in out.DeidentificationMethodCodeSequence}


def test_compound_actions_resolved_per_iod() -> None:
    enhanced_ct = "1.2.840.10008.5.1.4.1.1.2.1"
    assert resolve_compound("X/Z/D", 0x00181000, enhanced_ct) == "D"  # Device Serial Number, Type 1 there
    assert resolve_compound("X/Z/D", 0x00181000, "1.2.840.10008.5.1.4.1.1.2") == "Z"
    assert resolve_compound("Z/D", 0x00080023, "1.2.840.10008.5.1.4.1.1.88.33") == "D"  # SR Content Date
    assert resolve_compound("X/Z", 0x00081110, "1.2.840.10008.5.1.4.1.1.2") == "Z"
    assert resolve_compound("X/D", 0x00181030, "1.2.840.10008.5.1.4.1.1.2") == "D"
    assert resolve_compound("X/Z/U*", 0x00081140, "1.2.840.10008.5.1.4.1.1.2") == "U"


def test_without_date_shift_dates_follow_the_basic_profile(settings: Settings) -> None:
    ds, _ = planted_dataset()
    out = deid_dataset(ds, source_secrets(settings, "s"), Policy(shift_dates=False))
    assert out.StudyDate == ""  # Z
    assert "AcquisitionDate" not in out or out.AcquisitionDate == ""  # X/Z
    assert out.ContentDate == ""  # Z/D, Type 2 in a CT image
    assert "LongitudinalTemporalInformationModified" not in out


@pytest.mark.parametrize(
    ("modality", "burned", "sop", "held"),
    [
        ("CT", "YES", "1.2.840.10008.5.1.4.1.1.2", True),
        ("US", "NO", "1.2.840.10008.5.1.4.1.1.6.1", True),
        ("OT", None, "1.2.840.10008.5.1.4.1.1.7", True),
        ("OT", "NO", "1.2.840.10008.5.1.4.1.1.7.4", True),
        ("XC", "NO", "1.2.840.10008.5.1.4.1.1.77.1.4", True),
        ("XA", None, "1.2.840.10008.5.1.4.1.1.12.1", True),
        ("", None, "1.2.840.10008.5.1.4.1.1.2", True),
        ("CT", None, "1.2.840.10008.5.1.4.1.1.2", False),
        ("XA", "NO", "1.2.840.10008.5.1.4.1.1.12.1", False),
    ],
)
def test_burned_in_text_held(
    settings: Settings, modality: str, burned: str | None, sop: str, held: bool
) -> None:
    ds, _ = planted_dataset(burned_in=burned)
    ds.Modality = modality
    ds.SOPClassUID = sop
    assert (burned_in_risk(ds) is not None) == held
    gate = make_gate(settings, "hosp-a")
    if held:
        with pytest.raises(HeldForReview):
            gate(DicomItem("x", ds))
    else:
        gate(DicomItem("x", ds))


def test_no_pixel_data_never_held() -> None:
    ds = Dataset()
    ds.Modality = "SR"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    assert burned_in_risk(ds) is None


@pytest.mark.slow
def test_shared_samples_leak_nothing_and_reread(settings: Settings) -> None:
    root = shared_sub("data", "dicom")
    gate = make_gate(settings, "pub")
    stats = Counter()
    for path in sorted(root.rglob("*.dcm")):
        ds = read_dicom(str(path))
        matcher = patient_matcher(ds)
        names = [str(ds.get("PatientName", "")), str(ds.get("PatientID", ""))]
        try:
            out = gate(DicomItem(str(path), ds)).dataset
        except HeldForReview:
            stats["held"] += 1
            continue
        back = roundtrip(out)
        stats["passed"] += 1
        assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID, path
        assert back.PatientIdentityRemoved == "YES"
        assert [i.CodeValue for i in back.DeidentificationMethodCodeSequence][0] == "113100"
        for elem in back.iterall():
            if elem.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UC"):
                assert not matcher.found(str(elem.value), generic=False), (
                    path.name,
                    elem.keyword,
                    elem.value,
                )
        for n in names:  # in the bytes too; digits-only ids could occur by chance inside a UID or pixels
            if len(n) >= 4 and not n.isdigit():
                assert n.encode() not in pydicom_bytes(back), (path.name, n)
    assert stats["passed"] >= 15 and stats["held"] >= 5


def pydicom_bytes(ds: Dataset) -> bytes:
    from deid_fixtures import file_bytes

    return file_bytes(ds)


def uid_paths(ds: Dataset, prefix: tuple = ()) -> dict[tuple, str]:
    """Every UI value by its path (tag, item index, tag, ...), non-standard UIDs only."""
    out: dict[tuple, str] = {}
    for elem in ds:
        path = (*prefix, int(elem.tag))
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                out.update(uid_paths(item, (*path, i)))
        elif elem.VR == "UI" and elem.value and "Class" not in elem.keyword:
            out[path] = str(elem.value)
    return out


@pytest.mark.slow
def test_rt_references_resolve_after_remapping(settings: Settings) -> None:
    """Across the RT set (and any set): the remapping is one-to-one and consistent, so every UID that
    was shared by two places (a reference and its target) is still shared, and no original survives."""
    root = shared_sub("data", "dicom", "pydicom")
    gate = make_gate(settings, "pub")
    names = ("rtstruct", "rtplan", "rtdose", "CT_small", "MR_small")
    before = {n: uid_paths(read_dicom(str(root / f"{n}.dcm"))) for n in names}
    out = {n: roundtrip(gate(DicomItem(n, read_dicom(str(root / f"{n}.dcm")))).dataset) for n in names}
    after = {n: uid_paths(d) for n, d in out.items()}
    mapping: dict[str, set[str]] = {}
    for n in names:
        for path, old in before[n].items():
            if path in after[n]:
                mapping.setdefault(old, set()).add(after[n][path])
    assert mapping
    assert all(len(v) == 1 for v in mapping.values())  # one original -> one replacement, everywhere
    news = [next(iter(v)) for v in mapping.values()]
    assert len(set(news)) == len(news)  # distinct stay distinct
    originals = set(mapping)
    assert not originals & {u for a in after.values() for u in a.values()}
    s = out["rtstruct"]
    frame = s.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    observed = {str(i.ReferencedFrameOfReferenceUID) for i in s.StructureSetROISequence}
    assert observed == {str(frame)}  # the structure set's internal references still resolve


def test_bad_values_are_emptied_not_passed(settings: Settings) -> None:
    ds, _ = planted_dataset()
    ds.StudyDate = "2024-13-45"  # not a DA: emptied, never passed unshifted
    ds.AcquisitionDateTime = "garbage"
    ds.PatientAge = "old"
    out = roundtrip(deid_dataset(with_file_meta(ds), source_secrets(settings, "s"), Policy()))
    assert out.StudyDate == "" and out.get("AcquisitionDateTime", "") == ""
    assert "2024-13-45" not in str(out)


def test_file_read_without_meta_gets_valid_meta(settings: Settings, tmp_path) -> None:  # noqa: ANN001
    ds, _ = planted_dataset()
    path = tmp_path / "raw.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True)  # no preamble, no file meta
    back = read_dicom(str(path))
    out = roundtrip(deid_dataset(back, source_secrets(settings, "s"), Policy()))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_sender_preamble_is_zeroed(settings: Settings, tmp_path) -> None:  # noqa: ANN001
    """pydicom writes back the preamble it read; a sender's preamble (a dual-format file's TIFF
    header, or anything at all) must not reach the lake's blob."""
    ds, _ = planted_dataset()
    ds = with_file_meta(ds)
    ds.preamble = b"HONG^GILDONG 900101-1234567 ".ljust(128, b"\x01")
    path = tmp_path / "preamble.dcm"
    ds.save_as(path, enforce_file_format=True)
    back = read_dicom(str(path))
    assert back.preamble.startswith(b"HONG^GILDONG")
    out = make_gate(settings, "hosp-a")(DicomItem(str(path), back)).dataset
    blob = part10_bytes(out)
    assert blob[:132] == b"\x00" * 128 + b"DICM"
    assert b"HONG^GILDONG" not in blob and b"900101" not in blob
    assert file_bytes(out)[:128] == b"\x00" * 128  # pydicom's own writer agrees


def test_output_is_deterministic(settings: Settings) -> None:
    """The same file through the same gate gives the same bytes (the lake addresses blobs by hash)."""
    from deid_fixtures import file_bytes

    ds, _ = planted_dataset(sop_uid="1.2.3.4.5.6", study_uid="1.2.3.4", series_uid="1.2.3.4.5")
    raw = file_bytes(with_file_meta(ds))
    import io

    outs = [
        file_bytes(make_gate(settings, "hosp-a")(DicomItem("x", pydicom.dcmread(io.BytesIO(raw)))).dataset)
        for _ in range(2)
    ]
    assert outs[0] == outs[1]


def test_hangul_only_name_romanized_in_free_text_is_masked(settings: Settings) -> None:
    """A header may name the patient only in Hangul while its free text spells the name in Latin letters."""
    ds, _ = planted_dataset(name="김^민준")
    ds.StudyDescription = "CHEST PA KIM MINJUN"
    ds.ImageComments = "Pt Min-jun Kim - prior CXR compared; Dr. LEE on call"
    out = deid_dataset(with_file_meta(ds), source_secrets(settings, "dicom-only"), Policy())
    assert out.StudyDescription == "CHEST PA *** ***"
    assert out.ImageComments == "Pt *** *** - prior CXR compared; Dr. LEE on call"


def test_sequence_parsed_at_read_inside_one_kept_as_bytes_is_cleaned(settings: Settings) -> None:
    """A defined-length sequence whose item holds an undefined-length sequence (pydicom parses that
    one at read time, so its element object stays the same when its items change): the changes
    inside must count, or the outer sequence's bytes as read would be put back."""
    import io

    from pydicom.sequence import Sequence

    ds, planted = planted_dataset()
    inner = Dataset()
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inner.ReferencedSOPInstanceUID = "1.2.826.0.1.99.4242"
    inner.add_new(0x0040A123, "PN", "HONG^GILDONG")  # Person Name
    item = Dataset()
    item.CodeValue = "T-D3000"
    item.AnatomicRegionModifierSequence = Sequence([inner])
    ds.AnatomicRegionSequence = Sequence([item])
    first = pydicom.dcmread(io.BytesIO(_file(with_file_meta(ds))))
    first.AnatomicRegionSequence[0]["AnatomicRegionModifierSequence"].is_undefined_length = True
    read = pydicom.dcmread(io.BytesIO(_file(first)))
    assert type(read.get_item(0x00082218)).__name__ == "RawDataElement"  # outer: bytes as read
    out = _file(make_gate(settings, "hosp-a")(DicomItem("x.dcm", read)).dataset)
    assert b"1.2.826.0.1.99.4242" not in out
    assert b"GILDONG" not in out


def _file(ds: Dataset) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_instances_of_one_patient_share_one_matcher_with_known_identifiers() -> None:
    """The header's matcher joined with what FHIR sent is built once per patient, not per instance
    (the cleaned-text cache is keyed by it)."""
    from medhub.privacy.deid.dicom import _with_known
    from medhub.privacy.deid.text import Matcher

    header = patient_matcher(planted_dataset()[0])
    known = Matcher(("GILDONG HONG",), ("X-1",), ())
    first, second = _with_known(header, known), _with_known(header, known)
    assert first is second
    assert first.clean("seen by GILDONG HONG, X-1") == "seen by ***, ***"
    assert _with_known(header, None) is header


def test_text_shortcut_leaves_exactly_what_the_full_check_leaves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk passes raw ASCII text that is already clean without calling `_apply`; text that
    holds an identifier (one value of several, a backslash in LT, a date to shift) still goes
    through it. With the shortcut refused, the output is the same, byte for byte."""
    import io

    from medhub.privacy.deid import dicom as engine

    ds, planted = planted_dataset()
    ds.StudyDescription = "CHEST PA"  # clean: passed
    ds.SeriesDescription = "HONG GILDONG follow-up"  # the patient's name: cleaned
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.add_new(0x00081090, "LO", "MODEL X")  # Manufacturer's Model Name, kept
    ds.add_new(0x00204000, "LT", "seen 2024-03-01 \\ MRN0042 on file")  # LT: backslash, id, date
    ds.add_new(0x00181030, "LO", ["PROTO A", "MRN0042 B"])  # Protocol Name, 2nd value holds the id
    data = _file(with_file_meta(ds))

    def gated() -> bytes:
        read = pydicom.dcmread(io.BytesIO(data))
        assert type(read.get_item(0x00081030)).__name__ == "RawDataElement"
        return part10_bytes(make_gate(settings, "hosp-a")(DicomItem("x.dcm", read)).dataset)

    passed: list[bool] = []
    real = engine._text_unchanged
    monkeypatch.setattr(engine, "_text_unchanged", lambda *a: passed.append(real(*a)) or passed[-1])
    with_shortcut = gated()
    assert True in passed and False in passed  # both ways taken
    monkeypatch.setattr(engine, "_text_unchanged", lambda *_a: False)
    assert gated() == with_shortcut
    for planted_value in (b"GILDONG", b"MRN0042", b"2024-03-01"):
        assert planted_value not in with_shortcut
    assert b"CHEST PA" in with_shortcut and b"MODEL X" in with_shortcut
