"""DICOM reader: one Part-10 file (or a bare data set without the preamble) per item, via pydicom.

Validation: the file parses, carries SOPInstanceUID and PatientID, and its pixel data is whole
(pydicom reads a truncated file without complaint, so the length is checked here).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError

from medhub.ingest.records import DicomItem, Rejected

MAX_DICOM_BYTES = 2 * 1024 * 1024 * 1024


_ROWS, _COLUMNS, _BITS, _SAMPLES, _FRAMES = 0x00280010, 0x00280011, 0x00280100, 0x00280002, 0x00280008
_PIXEL_DATA = 0x7FE00010


def _value(ds: pydicom.Dataset, tag: int, default: object = None) -> object:
    """`ds.get(keyword, default)` by tag: the element's value, else default. A raw US value of one
    number is read from its two bytes, as pydicom converts it, and the element is left raw (the
    blob encoder then copies its bytes instead of writing a converted number back)."""
    elem = ds._dict.get(tag)
    if elem is None:
        return default
    if (
        isinstance(elem, RawDataElement)
        and elem.VR == "US"
        and type(elem.value) is bytes
        and len(elem.value) == 2
    ):
        return int.from_bytes(elem.value, "little" if elem.is_little_endian else "big")
    return ds[tag].value


def _pixel_problem(ds: pydicom.Dataset) -> str | None:
    held = ds._dict
    has_image = _ROWS in held and _COLUMNS in held and _BITS in held
    if _PIXEL_DATA not in held:
        if has_image and _SAMPLES in held:
            return "image attributes (Rows, Columns) present but PixelData is missing: the file is truncated"
        return None
    value = ds[_PIXEL_DATA].value
    if value is None:
        return "PixelData is empty: the file is truncated"
    if ds.file_meta is not None and getattr(ds.file_meta, "TransferSyntaxUID", None) is not None:
        compressed = ds.file_meta.TransferSyntaxUID.is_compressed
    else:
        compressed = False
    if compressed:
        try:
            n = sum(1 for _ in generate_fragments(value))
        except Exception as exc:  # noqa: BLE001 - any failure to split the fragments means damage
            return f"encapsulated PixelData is damaged or truncated ({exc})"
        if n == 0:
            return "encapsulated PixelData holds no fragments: the file is truncated"
        return None
    if not has_image:
        return None
    bits = int(_value(ds, _BITS))
    frames = int(_value(ds, _FRAMES, 1) or 1)
    spp = int(_value(ds, _SAMPLES, 1) or 1)
    pixels = int(_value(ds, _ROWS)) * int(_value(ds, _COLUMNS)) * frames * spp
    expected = (pixels + 7) // 8 if bits == 1 else pixels * bits // 8
    if len(value) < expected:
        return f"PixelData holds {len(value)} bytes, {expected} expected: the file is truncated"
    return None


def read_dicom(path: Path, data: bytes | None = None) -> Iterator[DicomItem | Rejected]:
    """One item for the file; `data`, where given, is the file's content already read."""
    name = str(path)
    size = len(data) if data is not None else path.stat().st_size
    if size > MAX_DICOM_BYTES:
        yield Rejected(name, f"DICOM file of {size} bytes exceeds the {MAX_DICOM_BYTES} byte limit")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data) if data is not None else path, force=True)
    except InvalidDicomError as exc:
        yield Rejected(name, f"not a valid DICOM file: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on damaged input
        yield Rejected(name, f"DICOM file could not be parsed ({exc.__class__.__name__}: {exc}); truncated?")
        return
    missing = [k for k, t in (("SOPInstanceUID", 0x00080018), ("PatientID", 0x00100020)) if t not in ds._dict]
    if missing:
        yield Rejected(name, f"DICOM data set lacks {', '.join(missing)} (required to file the image)")
        return
    try:
        problem = _pixel_problem(ds)
    except Exception as exc:  # noqa: BLE001
        problem = f"pixel attributes could not be read ({exc.__class__.__name__}: {exc})"
    if problem:
        yield Rejected(name, problem)
        return
    yield DicomItem(name, ds)
