"""Part-10 bytes of a DICOM dataset for the blob store: what `pydicom.dcmwrite(buf, ds,
enforce_file_format=True)` writes, byte for byte, at a fraction of its cost.

pydicom's writer spends about 10 us of Python per data element (a buffer object, encoding
checks, a context manager), even for an element still held as read (a RawDataElement), whose
bytes it copies as they are. A gated dataset is mostly such elements, so `part10_bytes` packs
their headers itself and joins the values; everything else (converted elements, items whose
encoding differs from the file's, undefined lengths, big values in a 16-bit length VR, file
meta) goes through pydicom's own functions, as does a whole file in a transfer syntax this
module does not handle (deflate, private, none). The file meta group as read is written directly
where that gives what dcmwrite's copy-validate-convert gives (`_file_meta_plain`), else as
dcmwrite does it. The same tag order, group length rule and defined item lengths hold;
tests/test_lake_dicom_bytes.py compares it with pydicom on every file of the public set, on
synthetic datasets and on file meta variants. `part10_chunks` gives the same bytes in pieces
(large values not copied into one buffer) for a caller that hashes and writes them in turn.
Written for pydicom 3.0.2 (pinned in pyproject); it reads a few of pydicom's private dataset
attributes (`_dict`, `_read_implicit`, `_read_little`, `_read_charset`, `_parent_encoding`).
"""

from __future__ import annotations

import re
import struct
from copy import copy
from functools import lru_cache
from typing import Any

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element, write_dataset, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_ALL_VRS = frozenset(str(vr) for vr in VR if len(str(vr)) == 2)
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_STRING_VRS = frozenset({"AE", "AS", "CS", "UR", "UI"})  # pydicom's write_string and write_UI
_GROUP_LENGTH = struct.Struct("<HH2sHL")  # (0002,0000) UL, explicit VR little endian


class _Packer:
    """Header layouts of one encoding (little or big endian, explicit or implicit VR)."""

    def __init__(self, implicit: bool, little: bool) -> None:
        e = "<" if little else ">"
        self.implicit, self.little = implicit, little
        self.short = struct.Struct(e + "HH2sH")  # tag, VR, 16-bit length
        self.long = struct.Struct(e + "HH2sHL")  # tag, VR, reserved, 32-bit length
        self.implicit_header = struct.Struct(e + "HHL")  # tag, 32-bit length (also items, delimiters)
        # explicit VR: per known VR, its bytes and whether its length is 32-bit (else 16-bit)
        self.vr_bytes = {vr: (vr.encode("ascii"), vr in _LONG_VRS) for vr in _ALL_VRS}

    def tag_length(self, tag: int, length: int) -> bytes:
        return self.implicit_header.pack(tag >> 16, tag & 0xFFFF, length)

    def header(self, tag: int, vr: str, length: int) -> bytes:
        if self.implicit:
            return self.implicit_header.pack(tag >> 16, tag & 0xFFFF, length)
        if vr in _LONG_VRS:
            return self.long.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, length)
        return self.short.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), length)


@lru_cache(maxsize=4)
def _packer(implicit: bool, little: bool) -> _Packer:
    """One packer per encoding (it holds no state beyond its layouts)."""
    return _Packer(bool(implicit), bool(little))


def _by_pydicom(elem: DataElement | RawDataElement, p: _Packer, encodings: Any) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = p.implicit, p.little
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


def _dataset_by_pydicom(ds: Dataset, p: _Packer, parent_encoding: Any) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = p.implicit, p.little
    write_dataset(fp, ds, parent_encoding)
    return fp.getvalue()


def _raw(elem: RawDataElement, p: _Packer, out: list[bytes]) -> bool:
    """Append a raw element as pydicom writes it; False where pydicom's own path is needed
    (undefined length, no value, an ambiguous VR, a value too long for a 16-bit length)."""
    value, vr = elem.value, elem.VR
    if elem.length == 0xFFFFFFFF or type(value) is not bytes:
        return False
    n = len(value)
    if not p.implicit and (not vr or len(vr) != 2 or (n > 0xFFFF and vr not in _LONG_VRS)):
        return False
    out.append(p.header(elem.tag, vr or "", n))
    out.append(value)
    return True


def _binary(elem: DataElement, p: _Packer, out: list[bytes]) -> bool:
    """An OB or OW value as write_OBvalue / write_OWvalue write it; False where pydicom must
    (encapsulated Pixel Data that does not start with an item: pydicom says why)."""
    value, tag = elem.value, int(elem.tag)
    pad = b"\x00" if len(value) % 2 else b""
    if not elem.is_undefined_length:
        out += [p.header(tag, elem.VR, len(value) + len(pad)), value, pad]
        return True
    if tag == _PIXEL_DATA and not value.startswith(p.tag_length(_ITEM, 0)[:4]):
        return False
    out += [p.header(tag, elem.VR, 0xFFFFFFFF), value, pad, p.tag_length(_SEQ_END, 0)]
    return True


def _string(elem: DataElement, p: _Packer, out: list[bytes]) -> bool:
    """An ASCII value of a VR pydicom writes with write_string / write_UI (no character set
    applies), padded as they pad; False for anything else."""
    value = elem.value
    if not isinstance(value, str):
        if type(value) not in (MultiValue, list, tuple) or not all(isinstance(v, str) for v in value):
            return False
        value = "\\".join(value)
    if not value.isascii():
        return False
    if len(value) % 2:
        value += "\x00" if elem.VR == "UI" else " "
    n = len(value)
    if not p.implicit and n > 0xFFFF and elem.VR not in _LONG_VRS:
        return False
    out += [p.header(int(elem.tag), elem.VR, n), value.encode("ascii")]
    return True


def _sequence(elem: DataElement, p: _Packer, encodings: Any, out: list[bytes]) -> None:
    """A sequence as pydicom's write_sequence writes it: items of defined length unless read
    undefined, the sequence's own length undefined where it was read so."""
    encodings = _python_encodings(encodings or [default_encoding])
    body: list[bytes] = []
    for item in elem.value if not elem.is_empty else ():
        data = _dataset(item, p, encodings)
        if getattr(item, "is_undefined_length_sequence_item", False):
            body += [p.tag_length(_ITEM, 0xFFFFFFFF), data, p.tag_length(_ITEM_END, 0)]
        else:
            body += [p.tag_length(_ITEM, len(data)), data]
    undefined = elem.is_undefined_length
    out.append(p.header(int(elem.tag), "SQ", 0xFFFFFFFF if undefined else sum(map(len, body))))
    out += body
    if undefined:
        out.append(p.tag_length(_SEQ_END, 0))


@lru_cache(maxsize=256)
def _cached_encodings(key: tuple[str, ...] | str, mode: int) -> tuple[str, ...]:
    return tuple(convert_encodings(key if isinstance(key, str) else list(key)))


def _python_encodings(encodings: Any) -> list[str]:
    """convert_encodings(encodings), cached per value (every sequence of a file asks again)."""
    if isinstance(encodings, str):
        key: tuple[str, ...] | str = encodings
    elif isinstance(encodings, list | tuple | MultiValue) and all(type(e) is str for e in encodings):
        key = tuple(encodings)
    else:
        return convert_encodings(encodings)
    return list(_cached_encodings(key, config.settings.reading_validation_mode))


def _dataset(ds: Dataset, p: _Packer, parent_encoding: Any) -> bytes:
    return b"".join(_chunks(ds, p, parent_encoding))


def _chunks(ds: Dataset, p: _Packer, parent_encoding: Any) -> list[bytes]:
    """The encoded dataset in pieces (pydicom's write_dataset, for a file pointer already in `p`'s
    encoding): the pixel data is copied once, when the file's pieces are joined.

    The dataset's state is read from its own attributes (pydicom's properties and its keyword
    lookup cost more than the encoding of a small item): what `original_encoding`,
    `original_character_set` and `_character_set` return, the latter asked only where the item
    has a Specific Character Set of its own (else it is the parent's encoding)."""
    d = ds._dict
    charset = d.get(0x00080005)
    if (p.implicit, p.little) != (ds._read_implicit, ds._read_little) or ds._read_charset != (
        ds._parent_encoding if charset is None else getattr(ds, "_character_set", None)
    ):
        return [_dataset_by_pydicom(ds, p, parent_encoding)]  # pydicom converts every element here
    encodings = parent_encoding if charset is None else ds.get("SpecificCharacterSet", parent_encoding)
    out: list[bytes] = []
    implicit, vr_bytes, short, long = p.implicit, p.vr_bytes, p.short.pack, p.long.pack
    for tag, elem in sorted(zip(map(int, d), d.values(), strict=True)):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths are not written (PS3.5 7.2)
        if isinstance(elem, RawDataElement):
            value = elem.value
            # the common case of _raw, inline: a defined-length value of a known VR
            if type(value) is bytes and elem.length != 0xFFFFFFFF:
                n = len(value)
                if implicit:
                    out += (p.implicit_header.pack(tag >> 16, tag & 0xFFFF, n), value)
                    continue
                vr = vr_bytes.get(elem.VR)
                if vr is not None:
                    if vr[1]:
                        out += (long(tag >> 16, tag & 0xFFFF, vr[0], 0, n), value)
                        continue
                    if n <= 0xFFFF:
                        out += (short(tag >> 16, tag & 0xFFFF, vr[0], n), value)
                        continue
            if value is not None and _raw(elem, p, out):
                continue
            if value is None:
                elem = ds[tag]  # deferred or empty: converted, as pydicom's get_item does
        if isinstance(elem, RawDataElement):
            out.append(_by_pydicom(elem, p, encodings))
        elif elem.VR == "SQ" and not elem.is_buffered:
            _sequence(elem, p, encodings, out)
        elif not (
            (elem.VR in _STRING_VRS and not elem.is_buffered and _string(elem, p, out))
            or (elem.VR in ("OB", "OW") and type(elem.value) is bytes and _binary(elem, p, out))
        ):
            out.append(_by_pydicom(elem, p, encodings))
    return out


_PLAIN_UID = re.compile(r"(0|[1-9][0-9]{0,63})(\.(0|[1-9][0-9]{0,63}))*")  # valid (PS3.5 9.1), ASCII
_META_UIDS = (0x00020002, 0x00020003, 0x00020010, 0x00020012)  # the UIDs dcmwrite converts


def _plain_uid(elem: DataElement | RawDataElement | None) -> str | None:
    """The element's UID as pydicom converts it (convert_UI, then UID) where it is one valid UID
    of at most 64 characters with no padding beyond trailing NULs and spaces; else None."""
    if isinstance(elem, RawDataElement):
        if elem.VR != "UI" or type(elem.value) is not bytes or elem.length == 0xFFFFFFFF:
            return None
        value: Any = elem.value.decode("latin-1").rstrip("\x00 ")  # pydicom's default_encoding
    elif isinstance(elem, DataElement) and elem.VR == "UI":
        value = elem.value
    else:
        return None
    if not isinstance(value, str) or len(value) > 64 or not _PLAIN_UID.fullmatch(value):
        return None
    return str(value)


def _file_meta_plain(ds: Dataset, source: FileMetaDataset) -> bytes | None:
    """`_file_meta` for the common case, without pydicom's copy, validation and conversions: the
    file meta as read (explicit VR little endian), group 2 only, every element present that
    validate_file_meta would add or check, its UIDs plain and valid, the others raw elements of a
    known VR. Each element is written as dcmwrite writes it: the converted UIDs and the version
    from their values (UIDs padded with a NUL, OB with a zero byte), the others as read, the group
    length first. None where anything differs from that (the caller then follows pydicom)."""
    encoding = (source._read_implicit, source._read_little, source._read_charset)
    if encoding != (False, True, default_encoding):
        return None
    d = source._dict
    tags = sorted(map(int, d))
    if not tags or tags[0] >> 16 != 2 or tags[-1] >> 16 != 2 or 0x00020013 not in d:
        return None
    uids = {tag: _plain_uid(d.get(tag)) for tag in _META_UIDS}
    for tag, keyword in ((0x00020002, "SOPClassUID"), (0x00020003, "SOPInstanceUID")):
        if uids[tag] is None:
            return None
        value = ds.get(keyword, None)  # converted, as _file_meta converts it (its bytes follow)
        if value and value != uids[tag]:
            if not isinstance(value, str) or len(value) > 64 or not _PLAIN_UID.fullmatch(value):
                return None
            uids[tag] = str(value)
    if None in uids.values():
        return None
    p = _packer(False, True)
    out: list[bytes] = []
    for tag in tags:
        elem = d[tag]
        if tag == 0x00020000:  # written as a UL of the group's length: its value is replaced
            value = elem.value
            if elem.VR != "UL" or not (
                (isinstance(elem, RawDataElement) and type(value) is bytes and len(value) == 4)
                or (isinstance(elem, DataElement) and type(value) is int and 0 <= value <= 0xFFFFFFFF)
            ):
                return None
            continue
        uid = uids.get(tag)
        if uid is not None:
            data = (uid + "\x00" if len(uid) % 2 else uid).encode("ascii")
            out += (p.short.pack(2, tag & 0xFFFF, b"UI", len(data)), data)
        elif tag == 0x00020001:  # File Meta Information Version: OB, converted (validate asks is_empty)
            value = elem.value
            if elem.VR != "OB" or type(value) is not bytes or not value:
                return None
            if isinstance(elem, RawDataElement) and elem.length == 0xFFFFFFFF:
                return None
            if isinstance(elem, DataElement) and elem.is_undefined_length:
                return None
            pad = b"\x00" if len(value) % 2 else b""
            out += (p.long.pack(2, 1, b"OB", 0, len(value) + len(pad)), value, pad)
        elif not (
            isinstance(elem, RawDataElement)
            and type(elem.value) is bytes
            and elem.VR in _ALL_VRS
            and elem.length != 0xFFFFFFFF
            and _raw(elem, p, out)
        ):
            return None
    if 0x00020001 not in d:
        return None
    return _GROUP_LENGTH.pack(2, 0, b"UL", 4, sum(map(len, out))) + b"".join(out)


def _file_meta(ds: Dataset, tsyntax: UID) -> bytes:
    """The file meta group as dcmwrite(enforce_file_format=True) writes it (on a copy)."""
    source = ds.file_meta
    plain = _file_meta_plain(ds, source)
    if plain is not None:
        return plain
    meta = FileMetaDataset()  # a copy with the elements' own copies, as dcmwrite's deepcopy
    for tag, elem in source.items():
        meta[tag] = copy(elem) if isinstance(elem, DataElement) else elem
    implicit, little = source.original_encoding
    meta.set_original_encoding(implicit, little, source.original_character_set)
    meta_class = meta.get("MediaStorageSOPClassUID", None)
    ds_class = ds.get("SOPClassUID", None)
    if meta_class is None or (ds_class and ds_class != meta_class):
        meta.MediaStorageSOPClassUID = ds_class
    meta_instance = meta.get("MediaStorageSOPInstanceUID", None)
    ds_instance = ds.get("SOPInstanceUID", None)
    if meta_instance is None or (ds_instance and ds_instance != meta_instance):
        meta.MediaStorageSOPInstanceUID = ds_instance
    # write_file_meta_info: validate (adding version and implementation), write the group with a
    # group length of 0, then write the group length element again over the first 12 bytes.
    validate_file_meta(meta, enforce_standard=True)
    if "FileMetaInformationGroupLength" not in meta:
        meta.FileMetaInformationGroupLength = 0
    body = _dataset(meta, _packer(False, True), default_encoding)
    if body[:8] != _GROUP_LENGTH.pack(2, 0, b"UL", 4, 0)[:8]:  # not a plain UL first: pydicom's way
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = tsyntax.is_implicit_VR, tsyntax.is_little_endian
        write_file_meta_info(fp, meta, enforce_standard=True)
        return fp.getvalue()
    meta.FileMetaInformationGroupLength = len(body) - 12
    return _GROUP_LENGTH.pack(2, 0, b"UL", 4, len(body) - 12) + body[12:]


def _fast_path_syntax(ds: Dataset) -> UID | None:
    """The transfer syntax when this module writes the file itself, else None (pydicom does)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or config._use_future:
        return None
    ts = meta.get("TransferSyntaxUID", None)
    if ts is None or ts.is_private or not ts.is_transfer_syntax or ts == DeflatedExplicitVRLittleEndian:
        return None
    if any(int(t) >> 16 in (0, 2) for t in ds.keys()):  # noqa: SIM118 - tags, not elements
        return None  # dcmwrite refuses these: let it say why
    preamble = getattr(ds, "preamble", None)
    if preamble and len(preamble) != 128:
        return None
    return ts


def part10_bytes(ds: Dataset) -> bytes:
    """The dataset as a DICOM file (preamble, DICM, file meta, data set), exactly as
    `pydicom.dcmwrite(buf, ds, enforce_file_format=True)` writes it; raises where it raises.
    Like dcmwrite, it marks Pixel Data's length undefined exactly when the syntax is compressed."""
    return b"".join(part10_chunks(ds))


BIG_CHUNK = 64 * 1024  # pieces this large are handed on as they are, smaller ones joined


def part10_chunks(ds: Dataset) -> list[bytes]:
    """`part10_bytes(ds)` in consecutive pieces, for a caller that hashes and writes them in
    turn: large values (the pixel data above all) are the dataset's own bytes objects, never
    copied into one buffer, and the small pieces between them are joined."""
    ts = _fast_path_syntax(ds)
    if ts is None:
        buf = DicomBytesIO()
        dcmwrite(buf, ds, enforce_file_format=True)
        return [buf.getvalue()]
    meta = _file_meta(ds, ts)
    if _PIXEL_DATA in ds:
        ds[_PIXEL_DATA].is_undefined_length = ts.is_compressed  # as dcmwrite does (no decoding)
    body = _chunks(ds, _packer(ts.is_implicit_VR, ts.is_little_endian), default_encoding)
    out: list[bytes] = []
    run = [getattr(ds, "preamble", None) or b"\x00" * 128, b"DICM", meta]
    for piece in body:
        if not piece:
            continue  # an empty pad
        if len(piece) >= BIG_CHUNK:
            if run:
                out.append(b"".join(run))
            out.append(piece)
            run = []
        else:
            run.append(piece)
    if run:
        out.append(b"".join(run))
    return out
