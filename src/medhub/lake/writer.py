"""The lake writer: the sink that turns gated items into Parquet batches and content-addressed blobs.

Everything is written under `settings.staging_dir/<batch>/` first and renamed into the lake by
`commit()`, after an intent file listing those lake files is written; once the metadata store
has recorded the batch the intent is dropped. Recovery removes the lake files of intents whose
batch was never recorded, and nothing else (a lake is never swept against the store).
Rows are buffered per partition and flushed as row groups of one open Parquet file per
partition, so memory stays bounded while files stay large. One writer per hub at a time
(an exclusive lock on `<home>/ingest.lock`).

Deduplication: FHIR rows by (source, type, id, content hash), DICOM rows by the de-identified
file's hash, biosignal rows by their content hash; the keys already in the lake are read once.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import secrets
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement

from medhub.config import Settings
from medhub.ingest.records import BiosignalItem, DicomItem, FhirItem, FhirRow, Item
from medhub.lake import layout
from medhub.lake.dicom_bytes import part10_chunks
from medhub.lake.fhir_rows import FhirRows, add_fhir_jsons, add_fhir_row

FLUSH_BYTES = 8 * 1024 * 1024  # buffered rows per flush: bounds memory (row groups of ~8 MB)
_INTENT = ".intent.json"


class LakeBusy(RuntimeError):
    """Another ingestion holds the lake's writer lock."""


def _sha256_hex(pieces: list[bytes]) -> str:
    """The sha256 of the pieces joined, without joining them."""
    h = hashlib.sha256()
    for piece in pieces:
        h.update(piece)
    return h.hexdigest()


def _new_batch_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(6)}"


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _StagedFile:
    """One Parquet file being staged: rows are buffered (by the subclass) and flushed as row groups
    of one open writer."""

    schema: pa.Schema
    # Large unique values (resource JSON, hashes) gain nothing from dictionary pages or min/max
    # statistics, and computing them costs as much as the compression: columns named here get none.
    plain_columns: tuple[str, ...] = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0  # rows written

    pending: int  # rows buffered
    pending_bytes: int  # what the writer counted for them (see LakeWriter._buffered)

    def _table(self) -> pa.Table:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _open(self) -> pq.ParquetWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        small = [f.name for f in self.schema if f.name not in self.plain_columns]
        return pq.ParquetWriter(
            self.path,
            self.schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=small if self.plain_columns else True,
            write_statistics=small if self.plain_columns else True,
        )

    def flush(self) -> None:
        if not self.pending:
            return
        table = self._table()
        if self.writer is None:
            self.writer = self._open()
        self.writer.write_table(table, row_group_size=1 << 20)
        self.rows += table.num_rows
        self._reset()

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _Partition(_StagedFile):
    """A DICOM or biosignal dataset's staged file: one list per column."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        super().__init__(path)
        self.schema = schema
        self.columns: dict[str, list] = {f.name: [] for f in schema}
        self.pending = 0
        self.pending_bytes = 0

    def _table(self) -> pa.Table:
        return pa.Table.from_arrays(
            [pa.array(self.columns[f.name], f.type) for f in self.schema], schema=self.schema
        )

    def _reset(self) -> None:
        for v in self.columns.values():
            v.clear()
        self.pending = 0
        self.pending_bytes = 0


class _FhirPartition(_StagedFile):
    """The staged file of one FHIR resource type; its rows wait in a compiled `FhirRows` (filled by
    `add_fhir_row`, which keeps its counts)."""

    schema = layout.FHIR_SCHEMA
    plain_columns = ("resource", "content_hash")

    def __init__(self, path: Path, resource_type: str, source: str) -> None:
        super().__init__(path)
        self.resource_type = resource_type
        self.source = source
        self.buffer = FhirRows()

    @property
    def pending(self) -> int:  # type: ignore[override]
        return self.buffer.pending

    @property
    def pending_bytes(self) -> int:  # type: ignore[override]
        return self.buffer.pending_bytes

    def _table(self) -> pa.Table:
        rows, n = self.buffer, self.buffer.pending
        text = rows.joined_text()
        if len(text) >= 2**31:  # a string column's offsets are 32-bit; row groups stay far below this
            raise ValueError(f"{len(text)} bytes of {self.resource_type} JSON in one row group: over 2 GiB")
        # The string column's offsets: the running total of the rows' lengths, in its own 32 bits.
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.fromiter(map(len, rows.texts), dtype=np.int64, count=n), out=offsets[1:])
        resource = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])
        hexes = rows.joined_digests().hex().encode()  # sha256 digests as the column's hex strings
        hash_offsets = pa.array(range(0, 64 * n + 1, 64), pa.int32())
        content_hash = pa.Array.from_buffers(
            pa.string(), n, [None, hash_offsets.buffers()[1], pa.py_buffer(hexes)]
        )
        columns = {
            "resource_type": pa.repeat(pa.scalar(self.resource_type, pa.string()), n),
            "id": pa.array(rows.ids, pa.string()),
            "patient_ref": pa.array(rows.patient_refs, pa.string()),
            "last_updated": pa.array(rows.last_updated, pa.string()),
            "source": pa.repeat(pa.scalar(self.source, pa.string()), n),
            "content_hash": content_hash,
            "resource": resource,
        }
        return pa.Table.from_arrays([columns[f.name] for f in self.schema], schema=self.schema)

    def _reset(self) -> None:
        self.buffer.clear()


def _pending_bytes(part: _StagedFile) -> int:
    return part.pending_bytes


class LakeWriter:
    """The sink for one source (see medhub.ingest.pipeline.Sink)."""

    def __init__(self, settings: Settings, source: str, flush_bytes: int | None = None) -> None:
        settings.ensure_dirs()
        self.lake = settings.lake_dir
        self.staging_root = settings.staging_dir
        self.source = source
        self.flush_bytes = flush_bytes or FLUSH_BYTES
        self._lock_file = open(settings.home / "ingest.lock", "a+")  # noqa: SIM115 - held for the writer's life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise LakeBusy(f"another ingestion is writing to {self.lake}; wait for it to finish") from None
        self._keys: dict[str, set[bytes]] = {}
        self._start_batch()

    # -- batch life cycle -------------------------------------------------------------------
    def _start_batch(self) -> None:
        self.batch_id = _new_batch_id()
        self.stage = self.staging_root / self.batch_id
        self.parts: dict[tuple[str, str | None], _StagedFile] = {}
        self.blobs: list[str] = []
        self.buffered = 0
        self.staged = 0
        self._new_keys: dict[str, set[bytes]] = {}
        self.fhir_buffers: dict[str, FhirRows] = {}  # resource type -> its partition's row buffer

    def recover(self, committed: set[str]) -> None:
        """Undo what a killed run left: lake files of batches whose commit was never recorded
        (listed in their intent files), then everything else in staging."""
        root = self.staging_root
        for intent in sorted(root.glob(f"*{_INTENT}")) if root.exists() else []:
            batch = intent.name.removesuffix(_INTENT)
            if batch not in committed:
                for rel in orjson.loads(intent.read_bytes()):
                    (self.lake / rel).unlink(missing_ok=True)
            intent.unlink()
        for d in root.iterdir() if root.exists() else []:
            if d != self.stage:
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
        self._keys.clear()

    def recorded(self, batch_id: str) -> None:
        """The store has recorded `batch_id`: its intent file is no longer needed."""
        (self.staging_root / f"{batch_id}{_INTENT}").unlink(missing_ok=True)

    def abort(self) -> None:
        for p in self.parts.values():
            if p.writer is not None:
                p.writer.close()
        shutil.rmtree(self.stage, ignore_errors=True)
        self._start_batch()

    def close(self) -> None:
        self.abort()
        shutil.rmtree(self.stage, ignore_errors=True)
        self._lock_file.close()

    def staged_bytes(self) -> int:
        return self.staged

    def commit(self) -> tuple[str | None, list[str], int]:
        for p in self.parts.values():
            p.close()
        rows = sum(p.rows for p in self.parts.values())
        if not rows:
            shutil.rmtree(self.stage, ignore_errors=True)
            self._merge_keys()
            self._start_batch()
            return None, [], 0
        # Blobs are content-addressed: one already in the lake holds the same bytes, keep it.
        blob_moves = []
        for sha in self.blobs:
            src, rel = self.stage / "blobs" / sha, str(layout.blob_path(Path(""), sha))
            if (self.lake / rel).exists():
                src.unlink(missing_ok=True)
            else:
                blob_moves.append((src, rel))
        part_moves = [(p.path, str(p.path.relative_to(self.stage))) for p in self.parts.values() if p.rows]
        # The intent lists every lake file this batch is about to add, so that recovery can take
        # them out again if the store never records the batch (and touches nothing else).
        # Written beside, then renamed: a run killed while writing it leaves no cut intent (which
        # recovery could not read) but a stray file that recovery sweeps away with the rest of staging.
        intent = self.staging_root / f"{self.batch_id}{_INTENT}"
        partial = intent.with_name(intent.name + ".partial")
        with open(partial, "wb") as f:
            f.write(orjson.dumps([rel for _, rel in blob_moves + part_moves]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, intent)
        made: set[Path] = set()
        for src, rel in blob_moves:  # blobs first: no row is visible before the file it names
            dest = self.lake / rel
            if dest.parent not in made:  # blobs/<hh>/: one mkdir per folder, not one per blob
                dest.parent.mkdir(parents=True, exist_ok=True)
                made.add(dest.parent)
            os.replace(src, dest)
        moves = part_moves
        lake_files = []
        for src, rel in moves:
            dest = self.lake / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            _fsync_dir(dest.parent)
            lake_files.append(rel)
        batch_id = self.batch_id
        shutil.rmtree(self.stage, ignore_errors=True)
        self._merge_keys()
        self._start_batch()
        return batch_id, lake_files, rows

    def _merge_keys(self) -> None:
        for kind, keys in self._new_keys.items():
            self._keys.setdefault(kind, set()).update(keys)

    # -- deduplication ----------------------------------------------------------------------
    def _dedupe_keys(self, kind: str) -> tuple[set[bytes], set[bytes]]:
        """The keys of `kind` already in the lake (read once) and those this batch added."""
        known = self._keys.get(kind)
        if known is None:
            known = self._keys[kind] = self._load_keys(kind)
        return known, self._new_keys.setdefault(kind, set())

    def _is_new(self, kind: str, key: bytes) -> bool:
        known, new = self._dedupe_keys(kind)
        if key in known or key in new:
            return False
        new.add(key)
        return True

    def _load_keys(self, kind: str) -> set[bytes]:
        d = layout.dataset_dir(self.lake, kind, self.source)
        column = {layout.FHIR: "content_hash", layout.DICOM: "blob_sha256", layout.BIOSIGNAL: "content_hash"}[
            kind
        ]
        keys: set[bytes] = set()
        for f in sorted(d.rglob("*.parquet")) if d.exists() else []:
            for v in pq.read_table(f, columns=[column]).column(0).to_pylist():
                keys.add(bytes.fromhex(v[:16]))
        return keys

    # -- items ------------------------------------------------------------------------------
    def _partition(self, kind: str) -> _Partition:
        """The staged file of DICOM or biosignal rows."""
        part = self.parts.get((kind, None))
        if part is None:
            d = layout.dataset_dir(self.stage, kind, self.source)
            part = self.parts[(kind, None)] = _Partition(d / f"{self.batch_id}.parquet", layout.SCHEMAS[kind])
        assert isinstance(part, _Partition)
        return part

    def _fhir_buffer(self, rtype: str) -> FhirRows:
        """The row buffer of a resource type this batch has not met yet (see add_fhir_row)."""
        d = layout.dataset_dir(self.stage, layout.FHIR, self.source) / f"resource_type={rtype}"
        part = _FhirPartition(d / f"{self.batch_id}.parquet", rtype, self.source)
        self.parts[(layout.FHIR, rtype)] = part
        self.fhir_buffers[rtype] = part.buffer
        return part.buffer

    def _grew(self, part: _Partition, n: int) -> None:
        """`part` buffered `n` more bytes (see `_buffered`)."""
        part.pending_bytes += n
        self._buffered(n)

    def _buffered(self, n: int) -> None:
        """`n` more bytes are buffered. Past the budget, the largest buffers are flushed until half
        of it is free: a partition of a few rows (a rare resource type) waits for a later flush
        instead of writing a tiny row group each time, and memory stays within the budget."""
        self.buffered += n
        self.staged += n
        if self.buffered >= self.flush_bytes:
            for p in sorted(self.parts.values(), key=_pending_bytes, reverse=True):
                if self.buffered <= self.flush_bytes // 2 or not p.pending:
                    break
                self.buffered -= p.pending_bytes
                p.flush()

    def add(self, item: Item | FhirRow) -> tuple[str, bool]:
        if type(item) is tuple:  # a resource the gate's Bundle pass de-identified and serialized
            added, _ = self.add_rows([item])  # type: ignore[list-item]
            return str(item[0]), bool(added)
        if isinstance(item, FhirItem):
            return self._add_fhir(item)
        if isinstance(item, DicomItem):
            return self._add_dicom(item)
        if isinstance(item, BiosignalItem):
            return self._add_biosignal(item)
        raise TypeError(f"the lake writer does not know items of type {type(item).__name__}")

    def add_rows(self, rows: list[FhirRow]) -> tuple[dict[str, int], dict[str, int]]:
        """Stage the rows of a Bundle pass at once: (new, duplicate) counts per resource type."""
        known, new = self._dedupe_keys(layout.FHIR)
        added: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        n = add_fhir_jsons(rows, self.fhir_buffers, self._fhir_buffer, known, new, added, duplicates)
        if n:
            self._buffered(n)
        return added, duplicates

    def _add_fhir(self, item: FhirItem) -> tuple[str, bool]:
        if item.refs is not None:
            raise ValueError(
                "a Bundle entry reached the lake with its references unresolved (no gate resolved them)"
            )
        known, new = self._dedupe_keys(layout.FHIR)
        rtype, n = add_fhir_row(item.resource, self.fhir_buffers, self._fhir_buffer, known, new)
        if not n:
            return rtype, False
        self._buffered(n)
        return rtype, True

    def _stage_blob(self, data: bytes | list[bytes], sha: str | None = None) -> str:
        """Stage `data` (bytes, or consecutive pieces of them) as a blob; `sha`, where given, is
        its sha256 already computed."""
        pieces = [data] if isinstance(data, bytes) else data
        sha = sha or _sha256_hex(pieces)
        if sha not in self.blobs and not layout.blob_path(self.lake, sha).exists():
            folder = self.stage / "blobs"
            if not self.blobs:  # the batch's first blob: one mkdir per batch, not one per blob
                folder.mkdir(parents=True, exist_ok=True)
            with open(folder / sha, "wb") as f:
                f.writelines(pieces)
            self.blobs.append(sha)
        self.staged += sum(map(len, pieces))
        return sha

    def _add_dicom(self, item: DicomItem) -> tuple[str, bool]:
        ds = item.dataset
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pieces = part10_chunks(ds)  # the file's bytes, its pixel data not copied into one buffer
            except (ValueError, AttributeError):
                buf = io.BytesIO()
                pydicom.dcmwrite(buf, ds)
                pieces = [buf.getvalue()]
            header = orjson.dumps(_header(ds))
        sha = _sha256_hex(pieces)
        if not self._is_new(layout.DICOM, bytes.fromhex(sha[:16])):
            return "dicom", False
        self._stage_blob(pieces, sha)
        size = sum(map(len, pieces))
        pid = str(ds.get("PatientID", "") or "")
        meta = getattr(ds, "file_meta", None)
        ts = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None
        part = self._partition(layout.DICOM)
        part.pending += 1
        cols = part.columns
        for k, v in (
            ("source", self.source),
            ("sop_instance_uid", _s(ds.get("SOPInstanceUID"))),
            ("sop_class_uid", _s(ds.get("SOPClassUID"))),
            ("study_instance_uid", _s(ds.get("StudyInstanceUID"))),
            ("series_instance_uid", _s(ds.get("SeriesInstanceUID"))),
            ("patient_ref", f"Patient/{pid}" if pid else None),
            ("modality", _s(ds.get("Modality"))),
            ("body_part", _s(ds.get("BodyPartExamined"))),
            ("study_date", _s(ds.get("StudyDate"))),
            ("rows", _i(ds.get("Rows"))),
            ("columns", _i(ds.get("Columns"))),
            ("frames", _i(ds.get("NumberOfFrames", 1 if "PixelData" in ds else None))),
            ("transfer_syntax", ts),
            ("blob_sha256", sha),
            ("blob_size", size),
            ("header", header.decode()),
        ):
            cols[k].append(v)
        self._grew(part, len(header) + 500)
        return "dicom", True

    def _add_biosignal(self, item: BiosignalItem) -> tuple[str, bool]:
        lengths = np.array([len(s) for s in item.samples], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = (
            np.concatenate([np.asarray(s, dtype=np.int32) for s in item.samples])
            if item.samples
            else np.zeros(0, np.int32)
        )
        ch = item.channels
        table = pa.table(
            {
                "channel": pa.array(range(len(ch)), pa.int32()),
                "name": [c.name for c in ch],
                "units": [c.units for c in ch],
                "fs": [c.fs for c in ch],
                "gain": [c.gain for c in ch],
                "baseline": [c.baseline for c in ch],
                "samples": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            },
            schema=layout.SAMPLES_SCHEMA,
        )
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        data = buf.getvalue()
        channels = [vars(c) for c in ch]
        meta = {
            "record_id": item.record_name,
            "format": item.format,
            "start": item.start.isoformat() if item.start else None,
            "channels": channels,
            "patient": item.patient,
            "recording": item.recording,
            "comments": item.comments,
            "annotations": [[a.onset_s, a.duration_s, a.text] for a in item.annotations],
        }
        samples_sha = hashlib.sha256(data).hexdigest()
        content_hash = hashlib.sha256(orjson.dumps(meta) + samples_sha.encode()).hexdigest()
        if not self._is_new(layout.BIOSIGNAL, bytes.fromhex(content_hash[:16])):
            return item.format, False
        self._stage_blob(data, samples_sha)
        duration = max((c.n_samples / c.fs for c in ch if c.fs), default=None)
        part = self._partition(layout.BIOSIGNAL)
        part.pending += 1
        cols = part.columns
        for k, v in (
            ("source", self.source),
            ("record_id", item.record_name),
            ("format", item.format),
            ("patient_ref", _biosignal_patient(item)),
            ("start", meta["start"]),
            ("duration_s", duration),
            ("n_channels", len(ch)),
            ("channels", orjson.dumps(channels).decode()),
            ("patient", orjson.dumps(item.patient).decode()),
            ("recording", orjson.dumps(item.recording).decode()),
            ("comments", orjson.dumps(item.comments).decode()),
            ("annotations", orjson.dumps(meta["annotations"]).decode()),
            ("samples_sha256", samples_sha),
            ("samples_size", len(data)),
            ("content_hash", content_hash),
        ):
            cols[k].append(v)
        self._grew(part, 2000)
        return item.format, True


# Header attributes kept in the `header` JSON column (the whole gated header is in the blob).
HEADER_KEYWORDS = (
    "ImageType",
    "StudyDescription",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "AcquisitionDate",
    "ContentDate",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "Manufacturer",
    "ManufacturerModelName",
    "ViewPosition",
    "Laterality",
    "ImageLaterality",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "KVP",
    "Exposure",
    "SamplesPerPixel",
    "BurnedInAnnotation",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
)


_HEADER_TAGS = tuple((kw, tag_for_keyword(kw)) for kw in HEADER_KEYWORDS)


_SKIP = object()  # an empty value: not in the header
_HEADER_MEMO_SIZE = 16384
_MEMO_VALUE_BYTES = 512  # longer values are converted each time: the memo's memory stays bounded
# The header values of raw elements, as pydicom converts them, by (tag, VR, bytes, encoding, character
# set, pydicom's conversion settings): the instances of a series repeat most of them (modality,
# equipment, pixel layout, descriptions), and a conversion costs more than the lookup.
_header_memo: dict[tuple, Any] = {}


def _conversion_context(ds: pydicom.Dataset) -> tuple:
    """What pydicom's conversion of a raw element of `ds` depends on besides the element: the
    character set Dataset.__getitem__ passes, the value-type settings and the conversion hooks."""
    charset = ds._read_charset or ds._character_set  # as Dataset.__getitem__ chooses it
    return (
        charset if isinstance(charset, str) else tuple(charset),
        pydicom.config.use_DS_decimal,
        pydicom.config.use_DS_numpy,
        pydicom.config.use_IS_numpy,
        pydicom.config.datetime_conversion,
        pydicom.config.replace_un_with_known_vr,
        pydicom.config.settings.reading_validation_mode,
        pydicom.hooks.hooks.raw_element_value,
        pydicom.hooks.hooks.raw_element_vr,
    )


def _header_value(v: Any) -> Any:
    if v is None or v == "":
        return _SKIP
    if isinstance(v, pydicom.multival.MultiValue | list | tuple):
        return tuple(_jsonable(x) for x in v)
    return _jsonable(v)


def _header(ds: pydicom.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {}
    held = ds._dict  # the elements as held: ds[tag] converts a raw one, a converted one is itself
    context = None
    for kw, tag in _HEADER_TAGS:  # ds.get(kw), without its keyword and Tag lookups
        elem = held.get(tag)
        if elem is None:
            continue
        raw = isinstance(elem, RawDataElement) and type(elem.value) is bytes
        if raw and len(elem.value) <= _MEMO_VALUE_BYTES:
            if context is None:
                context = _conversion_context(ds)
            key = (tag, elem.VR, elem.value, elem.is_little_endian, elem.is_implicit_VR, context)
            value = _header_memo.get(key, _header_memo)
            if value is _header_memo:
                value = _header_value(ds[tag].value)
                if len(_header_memo) >= _HEADER_MEMO_SIZE:
                    _header_memo.clear()
                _header_memo[key] = value
        else:
            value = _header_value((ds[tag] if isinstance(elem, RawDataElement) else elem).value)
        if value is not _SKIP:
            out[kw] = list(value) if type(value) is tuple else value
    return out


def _jsonable(v: Any) -> Any:
    """Plain JSON values (pydicom's IS/DS are int/float subclasses that orjson refuses)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return str(v)


def _s(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _i(v: Any) -> int | None:
    try:
        return None if v is None or v == "" else int(v)
    except (TypeError, ValueError):
        return None


def _biosignal_patient(item: BiosignalItem) -> str | None:
    """The gated patient pseudonym: EDF+ patient code, or a WFDB `patient: <pseudonym>` comment."""
    code = (item.patient.get("code") or "").strip()
    if code and code.upper() != "X":
        return f"Patient/{code}"
    for c in item.comments:
        if c.lower().startswith("patient:"):
            v = c.split(":", 1)[1].strip()
            if v:
                return f"Patient/{v}"
    return None
