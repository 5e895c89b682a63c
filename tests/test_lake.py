"""The lake writer: staged until commit, atomic rename, recovery of unrecorded batches, patient_ref."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medhub.config import Settings
from medhub.ingest.records import DicomItem, FhirItem
from medhub.lake import layout
from medhub.lake.fhir_rows import patient_ref
from medhub.lake.writer import LakeBusy, LakeWriter
from test_ingest import observation, patient


def test_nothing_is_visible_in_the_lake_before_commit(settings: Settings) -> None:
    w = LakeWriter(settings, "hosp-a", flush_bytes=1)  # flush every row: row groups staged on disk
    try:
        for i in range(5):
            assert w.add(FhirItem("f", observation(f"o{i}", "p1"))) == ("Observation", True)
        assert w.add(FhirItem("f", observation("o0", "p1"))) == ("Observation", False)
        assert not list(settings.lake_dir.rglob("*.parquet"))
        assert list(settings.staging_dir.rglob("*.parquet"))
        batch, files, rows = w.commit()
        assert rows == 5 and files == [f"fhir/source=hosp-a/resource_type=Observation/{batch}.parquet"]
        t = pq.read_table(settings.lake_dir / files[0])
        assert t.schema.equals(layout.FHIR_SCHEMA) and t.num_rows == 5
        assert not list(settings.staging_dir.rglob("*.parquet"))
        assert w.commit() == (None, [], 0)
    finally:
        w.close()


def test_recover_removes_unrecorded_batches_and_staging(settings: Settings) -> None:
    w = LakeWriter(settings, "hosp-a")
    try:
        w.add(FhirItem("f", patient("p1")))
        kept, _, _ = w.commit()
        w.add(FhirItem("f", patient("p2")))
        orphan, files, _ = w.commit()
        item = DicomItem("ct", pydicom.dcmread(get_testdata_file("CT_small.dcm")))
        assert w.add(item) == ("dicom", True)
        _, orphan_files, _ = w.commit()  # a blob and a row, never recorded either
        blob = [p for p in settings.lake_dir.rglob("*") if p.is_file() and "blobs" in p.parts]
        assert len(blob) == 1
        w.add(FhirItem("f", patient("p3")))  # staged, never committed
        foreign = settings.lake_dir / "fhir" / "source=other" / "resource_type=Patient" / "x.parquet"
        foreign.parent.mkdir(parents=True)
        foreign.write_bytes(b"not ours")
        w.recover({kept})
        names = {p.stem for p in settings.lake_dir.rglob("*.parquet")}
        assert names == {kept, "x"}  # a file no intent names is never touched
        assert not blob[0].exists()  # the unrecorded batch's blob went with its row
        assert list(settings.staging_dir.iterdir()) == [w.stage] or not list(settings.staging_dir.iterdir())
        # the recovered writer forgets the orphan's rows: p2 is new again
        assert w.add(FhirItem("f", patient("p2"))) == ("Patient", True)
    finally:
        w.close()


def test_one_writer_at_a_time(settings: Settings) -> None:
    w = LakeWriter(settings, "hosp-a")
    try:
        with pytest.raises(LakeBusy, match="another ingestion"):
            LakeWriter(settings, "hosp-b")
    finally:
        w.close()
    LakeWriter(settings, "hosp-b").close()


def test_patient_ref() -> None:
    assert patient_ref({"resourceType": "Patient", "id": "x"}) == "Patient/x"
    assert patient_ref(observation("o", "y")) == "Patient/y"
    assert (
        patient_ref({"resourceType": "Claim", "id": "c", "patient": {"reference": "Patient/z"}})
        == "Patient/z"
    )
    assert patient_ref(
        {"resourceType": "Coverage", "id": "c", "beneficiary": {"reference": "Patient/w"}}
    ) == ("Patient/w")
    assert (
        patient_ref({"resourceType": "Observation", "id": "o", "subject": {"reference": "Group/g"}}) is None
    )
    assert patient_ref({"resourceType": "Organization", "id": "o"}) is None


def test_layout_globs_cover_written_files(settings: Settings, tmp_path: Path) -> None:
    import glob

    w = LakeWriter(settings, "hosp-a")
    try:
        w.add(FhirItem("f", patient("p1")))
        _, files, _ = w.commit()
    finally:
        w.close()
    assert glob.glob(layout.fhir_glob(settings.lake_dir)) == [str(settings.lake_dir / files[0])]
    assert glob.glob(layout.dataset_glob(settings.lake_dir, layout.FHIR)) == [
        str(settings.lake_dir / files[0])
    ]


def test_a_blob_staged_in_pieces_is_their_bytes_under_their_hash(settings: Settings) -> None:
    """The DICOM path hands the writer a file in pieces (its pixel data not joined into one buffer):
    the staged blob holds the pieces' bytes, named by the sha256 of all of them."""
    import hashlib

    pieces = [b"\x00" * 128 + b"DICM", bytes(range(256)) * 400, b"tail"]
    whole = b"".join(pieces)
    w = LakeWriter(settings, "hosp-a")
    try:
        sha = w._stage_blob(pieces)
        assert sha == hashlib.sha256(whole).hexdigest()
        assert (w.stage / "blobs" / sha).read_bytes() == whole
        assert w.staged_bytes() == len(whole)
        assert w._stage_blob(whole) == sha  # the same bytes in one piece: the same blob, staged once
        assert w.blobs == [sha]
    finally:
        w.close()


def test_dicom_header_column_reads_what_keyword_lookup_reads() -> None:
    """The header JSON is built from the elements as held (a raw one converted by pydicom): the same
    values, in the same JSON, as reading each attribute by keyword."""
    import warnings

    import orjson
    from pydicom.multival import MultiValue

    from medhub.lake import writer

    def by_keyword(ds: pydicom.Dataset) -> dict:
        out = {}
        for kw in writer.HEADER_KEYWORDS:
            if kw not in ds:
                continue
            v = getattr(ds, kw)
            if v is None or v == "":
                continue
            is_multi = isinstance(v, MultiValue | list | tuple)
            out[kw] = [writer._jsonable(x) for x in v] if is_multi else writer._jsonable(v)
        return out

    files = sorted(Path(get_testdata_file("CT_small.dcm")).parent.glob("*.dcm"))
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            try:
                expected = orjson.dumps(by_keyword(pydicom.dcmread(f, force=True)))
            except Exception:  # noqa: BLE001 - files pydicom cannot read or convert are not compared
                continue
            assert orjson.dumps(writer._header(pydicom.dcmread(f, force=True))) == expected, f.name
            # again, the values now from the memo of converted header values
            assert orjson.dumps(writer._header(pydicom.dcmread(f, force=True))) == expected, f.name
            compared += expected != b"{}"
    assert compared > 50


def test_dicom_header_memo_keys_on_the_character_set() -> None:
    """The same bytes read under another Specific Character Set are other text: never the memo's."""
    import io

    from pydicom.dataset import Dataset

    from medhub.lake import writer

    def read_back() -> pydicom.Dataset:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.StudyDescription = "Éclair Ünit"
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3"
        buf = io.BytesIO()
        ds.save_as(buf, implicit_vr=False, little_endian=True)
        return pydicom.dcmread(io.BytesIO(buf.getvalue()), force=True)

    utf8 = read_back()
    raw = utf8.get_item(0x00081030).value
    assert writer._header(utf8)["StudyDescription"] == "Éclair Ünit"
    latin = read_back()  # the same bytes, relabelled Latin-1 (as read from a file that says so)
    latin[0x00080005] = pydicom.dataelem.RawDataElement(
        pydicom.tag.Tag(0x00080005), "CS", 10, b"ISO_IR 100", 0, False, True
    )
    latin._read_charset = "latin_1"
    assert latin.get_item(0x00081030).value == raw  # the same bytes
    assert writer._header(latin)["StudyDescription"] == raw.decode("latin-1").rstrip()


def test_dicom_header_memo_keeps_short_values_only() -> None:
    """A long header value is converted each time, not kept: the memo's memory stays bounded whatever
    the files hold, and the header is the same."""
    import io

    from pydicom.dataset import Dataset

    from medhub.lake import writer

    ds = Dataset()
    ds.StudyDescription = "CHEST " * 200  # 1,200 bytes
    ds.SeriesDescription = "PA"
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1.1", "1.2.3"
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=False, little_endian=True)
    writer._header_memo.clear()
    header = writer._header(pydicom.dcmread(io.BytesIO(buf.getvalue()), force=True))
    assert header["StudyDescription"] == ("CHEST " * 200).rstrip() and header["SeriesDescription"] == "PA"
    assert writer._header_memo  # the short values are memoized
    assert not any(len(key[2]) > writer._MEMO_VALUE_BYTES for key in writer._header_memo)


def test_flushes_take_the_largest_buffers_and_keep_memory_in_budget(settings: Settings) -> None:
    """Past the buffer budget the largest partitions are flushed until half of it is free: a rare
    type's few rows wait (fewer, larger row groups) and what is buffered never exceeds the budget."""
    budget = 20_000
    w = LakeWriter(settings, "hosp-a", flush_bytes=budget)
    try:
        for i in range(400):
            w.add(FhirItem("f", observation(f"o{i}", "p1")))
            if i % 40 == 0:
                w.add(FhirItem("f", patient(f"p{i}")))
            assert w.buffered < budget
            assert w.buffered == sum(p.pending_bytes for p in w.parts.values())
        _, files, rows = w.commit()
        assert rows == 410
        groups = {f.split("/")[2]: pq.ParquetFile(settings.lake_dir / f).num_row_groups for f in files}
        assert groups["resource_type=Observation"] > 3  # flushed again and again
        assert groups["resource_type=Patient"] < groups["resource_type=Observation"]
        seen = (
            pq.read_table(settings.lake_dir / [f for f in files if "Patient" in f][0])
            .column("id")
            .to_pylist()
        )
        assert sorted(seen) == sorted(f"p{i}" for i in range(0, 400, 40))
    finally:
        w.close()
