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
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

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
