"""The blob encoder writes what pydicom's dcmwrite(enforce_file_format=True) writes, byte for byte."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from deid_fixtures import planted_dataset, with_file_meta
from medhub.config import Settings
from medhub.lake import dicom_bytes
from medhub.lake.dicom_bytes import part10_bytes
from medhub.lake.intake import ingest_paths
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.dicom import deid_dataset
from medhub.privacy.keys import KeyStore
from medhub.shared_data import shared_path

PYDICOM_FILES = Path(get_testdata_file("CT_small.dcm")).parent


def _inputs() -> Iterator[Path]:
    yield from sorted(PYDICOM_FILES.glob("*.dcm"))
    shared = shared_path("data", "dicom")
    if shared is not None:
        yield from sorted(shared.rglob("*.dcm"))


def _read(path: Path) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, force=True)
        except Exception:  # noqa: BLE001 - files pydicom cannot read are not this module's business
            return None


def _pydicom_bytes(ds: Dataset) -> bytes | str:
    buf = io.BytesIO()
    try:
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    except Exception as exc:  # noqa: BLE001 - the encoder must raise where pydicom raises
        return type(exc).__name__
    return buf.getvalue()


def _ours(ds: Dataset) -> bytes | str:
    try:
        return part10_bytes(ds)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


def _same(make: Callable[[], Dataset]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _ours(make()) == _pydicom_bytes(make())


@pytest.mark.parametrize("path", list(_inputs()), ids=lambda p: p.name)
def test_as_read_and_gated_files_encode_as_pydicom_does(path: Path, tmp_path: Path) -> None:
    if _read(path) is None:
        pytest.skip("pydicom cannot read it")
    _same(lambda: _read(path))
    secrets = SourceSecrets(KeyStore(tmp_path / "keys"), "t")

    def gated() -> Dataset:
        ds = _read(path)
        try:
            deid_dataset(ds, secrets, Policy(hold_burned_in=False))
        except Exception:  # noqa: BLE001 - a file the engine refuses has no gated form to compare
            pytest.skip("not de-identifiable")
        return ds

    _same(gated)


def test_built_datasets_encode_as_pydicom_does() -> None:
    original = with_file_meta(planted_dataset()[0])
    stored = io.BytesIO()
    copy.deepcopy(original).save_as(stored, enforce_file_format=True)

    def built() -> Dataset:  # no original encoding: every element converted, items built in code
        return copy.deepcopy(original)

    def read_back() -> Dataset:  # raw elements, defined-length items, and a few changed values
        ds = pydicom.dcmread(io.BytesIO(stored.getvalue()))
        ds.PatientName = "CHANGED^NAME"
        ds.PixelData = bytes(31)  # odd length: padded
        ds.ImageComments = "x" * 70000  # too long for LT's use here: pydicom's own rule applies
        item = Dataset()
        item.CodeValue = "1"
        ds.AnatomicRegionSequence = Sequence([item])
        ds.AnatomicRegionSequence.is_undefined_length = True
        ds.ReferencedImageSequence[0].is_undefined_length_sequence_item = True
        return ds

    _same(built)
    _same(read_back)


def test_files_as_read_skip_pydicoms_per_element_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw elements, sequences and pixel data are packed here; only converted values go through
    pydicom's write_data_element."""
    calls: list[int] = []
    real = dicom_bytes.write_data_element

    def counting(fp, elem, encodings=None):  # noqa: ANN001, ANN202
        calls.append(int(elem.tag))
        return real(fp, elem, encodings)

    monkeypatch.setattr(dicom_bytes, "write_data_element", counting)
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    n_elements = len(ds)
    data = part10_bytes(ds)
    assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID == ds.SOPInstanceUID
    # converted, as dcmwrite converts them: Specific Character Set, SOP Class and Instance UID
    assert len(calls) <= 3 < n_elements


def test_ingest_never_decodes_pixel_data_and_keeps_its_bytes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Native and encapsulated (RLE, JPEG 2000) images go through the hub's gate into blobs with the
    pixel data's bytes as read; nothing on the way asks pydicom to decode them."""

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(Dataset, "convert_pixel_data", refuse)
    monkeypatch.setattr(pydicom.pixels, "pixel_array", refuse)
    monkeypatch.setattr(pydicom.pixels.utils, "pixel_array", refuse)
    inp = tmp_path / "in"
    inp.mkdir()
    names = ("CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm")
    for name in names:
        (inp / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    summary = ingest_paths(settings, "hosp-a", [inp], progress=False)
    assert summary.counts["dicom"].accepted == len(names), summary.problems
    blobs = [p for p in settings.lake_dir.rglob("*") if p.is_file() and "blobs" in p.parts]
    pixels = {bytes(pydicom.dcmread(b).get_item(0x7FE00010).value) for b in blobs}
    assert pixels == {bytes(pydicom.dcmread(inp / n).get_item(0x7FE00010).value) for n in names}


def _raw_meta(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _meta_variant(change: Callable[[Dataset], None]) -> Callable[[Dataset], Dataset]:
    """A file as read (its file meta raw elements), then changed by `change`."""

    def make() -> Dataset:
        ds = _read(Path(get_testdata_file("CT_small.dcm")))
        change(ds)
        return ds

    return make


def _set_meta(tag: int, vr: str, value: bytes) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        ds.file_meta[tag] = _raw_meta(tag, vr, value)

    return change


def _drop_meta(tag: int) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        del ds.file_meta[tag]

    return change


def _several(*changes: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        for c in changes:
            c(ds)

    return change


def _dataset_uid(keyword: str, value: bytes) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        tag = Tag(keyword)
        ds[tag] = RawDataElement(tag, "UI", len(value), value, 0, False, True)

    return change


_CT = b"1.2.840.10008.5.1.4.1.1.2"
META_VARIANTS = {
    "as read": lambda ds: None,
    "class uid padded with a space": _set_meta(0x00020002, "UI", _CT + b" "),
    "class uid without padding": _set_meta(0x00020002, "UI", b"1.2.840.10008.5.1.4.1.1.20"),
    "instance uid with a leading zero (invalid)": _set_meta(0x00020003, "UI", b"1.2.03.4\x00"),
    "instance uid multi-valued": _set_meta(0x00020003, "UI", b"1.2.3\\1.2.4\x00"),
    "instance uid too long": _set_meta(0x00020003, "UI", b"1." + b"2" * 70),
    "instance uid empty": _set_meta(0x00020003, "UI", b""),
    "transfer syntax padded with a space": _set_meta(0x00020010, "UI", b"1.2.840.10008.1.2.1 "),
    "implementation uid with a leading space": _set_meta(0x00020012, "UI", b" 1.2.3.4"),
    "implementation uid as another VR": _set_meta(0x00020012, "UN", b"1.2.3.4\x00"),
    "no implementation uid": _drop_meta(0x00020012),
    "no implementation version": _drop_meta(0x00020013),
    "odd implementation version": _set_meta(0x00020013, "SH", b"ODD"),
    "no version": _drop_meta(0x00020001),
    "empty version": _set_meta(0x00020001, "OB", b""),
    "odd version": _set_meta(0x00020001, "OB", b"\x00\x01\x02"),
    "version as another VR": _set_meta(0x00020001, "UN", b"\x00\x01"),
    "no group length": _drop_meta(0x00020000),
    "group length raw": _set_meta(0x00020000, "UL", b"\x00\x00\x00\x00"),
    "group length of 2 bytes": _set_meta(0x00020000, "US", b"\x00\x00"),
    "source AE title and private information": _several(
        _set_meta(0x00020016, "AE", b"SENDER"),
        _set_meta(0x00020100, "UI", b"1.2.3.4\x00"),
        _set_meta(0x00020102, "OB", b"\x01\x02\x03\x04"),
    ),
    "unknown VR": _set_meta(0x00020016, "XX", b"SENDER"),
    "dataset class differs": _dataset_uid("SOPClassUID", b"1.2.840.10008.5.1.4.1.1.4\x00"),
    "dataset class padded with a space": _dataset_uid("SOPClassUID", _CT + b" "),
    "dataset instance invalid": _dataset_uid("SOPInstanceUID", b"1.2.3.04\x00"),
    "dataset instance absent": lambda ds: ds.__delitem__(0x00080018),
    "file meta with a converted element": lambda ds: setattr(ds.file_meta, "ImplementationVersionName", "X"),
}


@pytest.mark.parametrize("name", list(META_VARIANTS))
def test_file_meta_variants_encode_as_pydicom_does(name: str) -> None:
    """The file meta group is written without pydicom's copy and validation only where that gives
    what dcmwrite gives; every other case follows pydicom (and raises where it raises)."""
    _same(_meta_variant(META_VARIANTS[name]))


def test_plain_file_meta_skips_pydicoms_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("validated by pydicom")

    monkeypatch.setattr(dicom_bytes, "validate_file_meta", refuse)
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    assert pydicom.dcmread(io.BytesIO(part10_bytes(ds))).SOPInstanceUID == ds.SOPInstanceUID
    ds.file_meta.ImplementationVersionName = "CONVERTED"  # not plain: pydicom's way
    with pytest.raises(AssertionError, match="validated"):
        part10_bytes(ds)


def test_chunks_join_to_the_file_and_hand_on_the_pixel_data_uncopied() -> None:
    original = with_file_meta(planted_dataset()[0])
    original.Rows, original.Columns, original.BitsAllocated, original.SamplesPerPixel = 256, 512, 16, 1
    original.PixelData = bytes(range(256)) * 1024  # 256 kB
    stored = io.BytesIO()
    original.save_as(stored, enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(stored.getvalue()))
        pixels = ds.get_item(0x7FE00010).value
        chunks = dicom_bytes.part10_chunks(ds)
        assert b"".join(chunks) == _pydicom_bytes(_read_bytes(stored.getvalue()))
    assert any(c is pixels for c in chunks) and all(chunks)
    assert all(len(c) >= dicom_bytes.BIG_CHUNK for c in chunks if c is not chunks[0] and c is not chunks[-1])


def _read_bytes(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))
