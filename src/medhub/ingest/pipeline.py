"""The resumable batch pipeline: plan -> hash -> skip what was done -> read -> gate -> sink -> commit.

`run_batch` knows nothing of privacy or the lake: the gate and the sink are passed in.

Commit protocol (per group of whole files): the sink stages its output under the staging folder;
`sink.commit()` renames it into the lake and returns the batch id and lake files; then one store
transaction records the batch, each file seen (with its BLAKE3 content hash) and the quarantine
entries. A run killed anywhere leaves either a recorded batch or lake files with no record,
which `sink.recover(committed_batches)` deletes at the start of the next run; files whose
hashes are recorded are skipped, the others are read again. Nothing is counted twice.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from blake3 import blake3
from sqlalchemy.engine import Engine

from medhub.ingest import detect
from medhub.ingest.biosignal import read_edf, read_wfdb
from medhub.ingest.dicom import read_dicom
from medhub.ingest.fhir import MAX_JSON_BYTES, read_json, read_ndjson
from medhub.ingest.plan import Unit, plan
from medhub.ingest.quarantine import keep_copy
from medhub.ingest.records import (
    BiosignalItem,
    DicomItem,
    FhirItem,
    FhirRow,
    Gate,
    GateFailure,
    HeldForReview,
    Item,
    Rejected,
    gate_bundle_pass,
    gate_resolves_refs,
)
from medhub.store import ops

MAX_REJECTS_PER_FILE = 100  # a file this broken is not read to the end
READ_ONCE_BYTES = 64 * 1024 * 1024  # DICOM files up to this size are read once (hashed, then parsed)
HASH_ALGORITHM = "blake3"  # of the files' content hashes in the store (sha256 before store migration 0002)
HASH_CHUNK_BYTES = 1 << 20  # files not read whole are hashed in chunks of this size
GC_THRESHOLD = 1_000_000  # allocations between young-generation collections during a batch

READERS = {
    detect.NDJSON: read_ndjson,
    detect.JSON: read_json,
    detect.DICOM: read_dicom,
    detect.WFDB: read_wfdb,
    detect.EDF: read_edf,
}
FORMAT_LABEL = {
    detect.NDJSON: "fhir",
    detect.JSON: "fhir",
    detect.DICOM: "dicom",
    detect.WFDB: "wfdb",
    detect.EDF: "edf",
    detect.UNKNOWN: "unknown",
}


class Sink(Protocol):
    """Where gated items go (the lake writer implements it)."""

    def recover(self, committed: set[str]) -> None:
        """Drop staged output, and lake files of batches whose commit was never recorded."""

    def add(self, item: Item | FhirRow) -> tuple[str, bool]:
        """Stage one gated item (or a row of the gate's Bundle pass); return its type label and
        whether it is new (False: duplicate)."""

    def add_rows(self, rows: list[FhirRow]) -> tuple[dict[str, int], dict[str, int]]:
        """Stage the rows of a Bundle pass at once; return the new and duplicate counts per type."""

    def staged_bytes(self) -> int:
        """About how much is staged and not yet committed."""

    def commit(self) -> tuple[str | None, list[str], int]:
        """Make everything staged visible; return (batch id or None if nothing, lake paths, rows)."""

    def recorded(self, batch_id: str) -> None:
        """The store has recorded the batch (the commit is complete)."""

    def abort(self) -> None:
        """Drop everything staged since the last commit."""


@dataclass
class Counts:
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0


@dataclass
class RunSummary:
    run_id: int
    source: str
    files: Counter = field(default_factory=Counter)  # status -> number of files
    counts: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))  # type -> item counts
    problems: list[Rejected] = field(default_factory=list)
    status: str = "running"
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(c.accepted for c in self.counts.values())

    @property
    def duplicate(self) -> int:
        return sum(c.duplicate for c in self.counts.values())

    @property
    def quarantined(self) -> int:
        return sum(c.quarantined for c in self.counts.values())

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "files": dict(self.files),
            "counts": {k: vars(v) for k, v in sorted(self.counts.items())},
            "problems": [vars(p) for p in self.problems],
        }


# progress(event, payload): "start" with the number of units, "advance" with the path of a finished unit.
Progress = Callable[[str, object], None]


def content_hash(data: bytes) -> str:
    """The content hash of bytes read whole: BLAKE3, 64 hex characters (`HASH_ALGORITHM`)."""
    return blake3(data).hexdigest()


def file_hash(path: Path) -> str:
    """The content hash of a file, read in chunks (bounded memory): `content_hash` of its bytes."""
    h = blake3()
    buf = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_saved: tuple[int, ...] | None = None
_gc_froze = False


@contextmanager
def _gc_tuned() -> Iterator[None]:
    """Collect reference cycles less often while a batch runs, then restore the settings.

    Parsing allocates millions of short-lived containers that reference counting frees at
    once; with the default thresholds the cyclic collector still runs every 700 allocations
    and now and then walks every live object (imported modules included), which costs a large
    share of a FHIR ingest. Cycles are still collected, only in fewer, larger sweeps, so memory
    stays bounded. What was alive before the batch (modules, the process's own state) is set
    aside for its duration (`gc.freeze`): a full sweep walks what the batch made, not all of it."""
    global _gc_depth, _gc_saved, _gc_froze
    with _gc_lock:  # batches may run in threads beside each other: the last one out restores
        if _gc_depth == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(GC_THRESHOLD, _gc_saved[1], _gc_saved[2])
            _gc_froze = gc.get_freeze_count() == 0  # a host that froze objects itself keeps its own
            if _gc_froze:
                gc.freeze()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_saved is not None:
                if _gc_froze:
                    gc.unfreeze()
                gc.set_threshold(*_gc_saved)


def run_batch(
    paths: Iterable[Path | str],
    source: str,
    gate: Gate,
    sink: Sink,
    store: Engine,
    progress: Progress | None = None,
    *,
    quarantine_dir: Path,
    commit_bytes: int = 256 * 1024 * 1024,
    commit_seconds: float = 30.0,
) -> RunSummary:
    """Ingest `paths` for `source`: every file lands (through `gate` into `sink`) or is quarantined."""
    t0 = time.perf_counter()
    sink.recover(ops.committed_batches(store))
    run_id = ops.start_run(store, source)
    summary = RunSummary(run_id=run_id, source=source)
    done = ops.done_hashes(store, source, HASH_ALGORITHM)
    pending_files: list[ops.FileRecord] = []
    pending_q: list[ops.QuarantineRecord] = []
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal pending_files, pending_q, last_commit
        batch_id, lake_files, rows = sink.commit()
        ops.record_commit(store, run_id, source, batch_id, lake_files, rows, pending_files, pending_q)
        if batch_id is not None:
            sink.recorded(batch_id)
        pending_files, pending_q = [], []
        last_commit = time.monotonic()

    try:
        units = plan(paths)
        if progress:
            progress("start", len(units))
        with _gc_tuned():
            for unit in units:
                files, q = _ingest_unit(unit, source, gate, sink, done, summary, quarantine_dir)
                pending_files += files
                pending_q += q
                if progress:
                    progress("advance", unit.path)
                if sink.staged_bytes() >= commit_bytes or time.monotonic() - last_commit >= commit_seconds:
                    commit()
        commit()
    except BaseException:
        summary.status = "failed"
        sink.abort()
        ops.finish_run(
            store,
            run_id,
            "failed",
            sum(summary.files.values()),
            summary.accepted,
            summary.duplicate,
            summary.quarantined,
            summary.as_dict()["counts"],
        )
        raise
    summary.status = "finished"
    summary.seconds = time.perf_counter() - t0
    ops.finish_run(
        store,
        run_id,
        "finished",
        sum(summary.files.values()),
        summary.accepted,
        summary.duplicate,
        summary.quarantined,
        summary.as_dict()["counts"],
    )
    return summary


def _ingest_unit(
    unit: Unit,
    source: str,
    gate: Gate,
    sink: Sink,
    done: set[str],
    summary: RunSummary,
    quarantine_dir: Path,
) -> tuple[list[ops.FileRecord], list[ops.QuarantineRecord]]:
    label = FORMAT_LABEL.get(unit.format, unit.format)
    all_paths = [unit.path, *unit.members]
    data: bytes | None = None
    try:
        sizes = [p.stat().st_size for p in all_paths]
        if (unit.format == detect.JSON and sizes[0] <= MAX_JSON_BYTES) or (
            unit.format == detect.DICOM and sizes[0] <= READ_ONCE_BYTES
        ):
            data = unit.path.read_bytes()  # read once: hashed here, parsed by the reader
            hashes = [content_hash(data)]
        else:
            hashes = [file_hash(unit.path)]
        hashes += [file_hash(p) for p in unit.members]
    except OSError as exc:
        problem = Rejected(str(unit.path), f"cannot be read: {exc.strerror or exc}")
        summary.problems.append(problem)
        summary.counts[label].quarantined += 1
        summary.files["quarantined"] += 1
        return [], [ops.QuarantineRecord(source, problem.source_file, None, problem.reason)]

    def records(status: str, items: int = 0) -> list[ops.FileRecord]:
        return [
            ops.FileRecord(str(p), s, h, HASH_ALGORITHM, unit.format, status, items if p == unit.path else 0)
            for p, s, h in zip(all_paths, sizes, hashes, strict=True)
        ]

    if all(h in done for h in hashes):
        summary.files["duplicate"] += len(all_paths)
        summary.counts[f"{label} files"].duplicate += len(all_paths)
        return records("duplicate"), []
    done.update(hashes)

    quarantined: list[ops.QuarantineRecord] = []
    copy_path: str | None = None

    def quarantine(problem: Rejected, kind: str = "rejected", type_label: str = label) -> None:
        nonlocal copy_path
        if copy_path is None:
            copy_path = keep_copy(quarantine_dir, source, unit.path, hashes[0])
        summary.problems.append(problem)
        summary.counts[type_label].quarantined += 1
        quarantined.append(
            ops.QuarantineRecord(source, problem.source_file, problem.line, problem.reason, kind, copy_path)
        )

    def quarantine_item(item: Item, reason: str, kind: str = "rejected") -> None:
        quarantine(Rejected(item.source_file, reason, getattr(item, "line", None)), kind, _item_label(item))

    if unit.format == detect.UNKNOWN:
        quarantine(Rejected(str(unit.path), unit.reason or "unrecognized format"))
        summary.files["quarantined"] += len(all_paths)
        return records("quarantined"), quarantined

    accepted = 0
    rejected = 0
    new_by_type: Counter = Counter()
    dup_by_type: Counter = Counter()

    def land(gated: Item | FhirRow, item: Item | None) -> None:
        """Hand a gated item (or a row of the gate's Bundle pass) to the sink, and count it."""
        try:
            type_label, new = sink.add(gated)
        except Exception as exc:  # noqa: BLE001 - e.g. a data set pydicom cannot write back
            reason = f"could not be written to the lake ({exc.__class__.__name__}: {exc})"
            if item is None:  # a row: no item to name, its file and type instead
                quarantine(Rejected(str(unit.path), reason), type_label=str(gated[0]))
            else:
                quarantine_item(item, reason)
            return
        if new:
            new_by_type[type_label] += 1
        else:
            dup_by_type[type_label] += 1

    def land_rows(rows: list[FhirRow]) -> None:
        """Rows of the gate's Bundle pass, staged at once."""
        try:
            added, duplicates = sink.add_rows(rows)
        except Exception:  # noqa: BLE001 - row by row then, so that the failing one is named
            for row in rows:
                land(row, None)
            return
        new_by_type.update(added)
        dup_by_type.update(duplicates)

    def too_many_rejects(item: Rejected) -> bool:
        nonlocal rejected
        quarantine(item)
        rejected += 1
        if rejected < MAX_REJECTS_PER_FILE:
            return False
        quarantine(
            Rejected(
                str(unit.path),
                f"stopped reading after {rejected} bad items: the rest of the file was not read",
                item.line,
            )
        )
        return True

    resolve = not gate_resolves_refs(gate)  # Bundle references: resolved by the reader, or by the gate
    outcomes = None
    run_bundle = gate_bundle_pass(gate) if data is not None and unit.format == detect.JSON else None
    if run_bundle is not None:
        try:
            outcomes = run_bundle(str(unit.path), data)  # None: the document is the reader's and the gate's
        except Exception as exc:  # noqa: BLE001 - a failure of the pass must not stop the batch
            outcomes = []
            quarantine(
                Rejected(
                    str(unit.path), f"the privacy gate failed on this file ({exc.__class__.__name__}: {exc})"
                )
            )
    if outcomes is not None:
        rows: list[FhirRow] = []
        for out in outcomes:  # already gated, in entry order (privacy.deid.fhir_bundle)
            kind = type(out)
            if kind is tuple:
                rows.append(out)  # type: ignore[arg-type]
                continue
            if rows:
                land_rows(rows)
                rows = []
            if kind is Rejected:
                if too_many_rejects(out):
                    break
            elif kind is GateFailure:
                err = out.error
                quarantine_item(
                    out.item, f"the privacy gate failed on this item ({err.__class__.__name__}: {err})"
                )
            else:
                land(out, out)
        if rows:
            land_rows(rows)
        items: Iterator[Item | Rejected] = iter(())
    elif data is not None:
        if unit.format == detect.JSON:
            items = read_json(unit.path, data=data, resolve=resolve)
        else:
            items = read_dicom(unit.path, data=data)
    elif unit.format == detect.NDJSON and not resolve:
        items = READERS[unit.format](unit.path, resolve=False)
    else:
        items = READERS[unit.format](unit.path)
    while True:
        try:
            item = next(items)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - a reader bug or unforeseen input must not stop the batch
            quarantine(Rejected(str(unit.path), f"the reader failed ({exc.__class__.__name__}: {exc})"))
            break
        if type(item) is Rejected:
            if too_many_rejects(item):
                break
            continue
        try:
            gated = gate(item)
        except HeldForReview as exc:
            quarantine_item(item, f"held for review: {exc}", "held")
            continue
        except Exception as exc:  # noqa: BLE001 - one item the gate cannot handle must not stop the batch
            quarantine_item(item, f"the privacy gate failed on this item ({exc.__class__.__name__}: {exc})")
            continue
        land(gated, item)
    for type_label, n in new_by_type.items():
        summary.counts[type_label].accepted += n
        accepted += n
    for type_label, n in dup_by_type.items():
        summary.counts[type_label].duplicate += n
    status = "accepted" if not quarantined else ("partial" if accepted else "quarantined")
    if status == "quarantined":
        first = quarantined[0]
        for m in unit.members:  # the files that travel with the record share its fate, and say so
            quarantined.append(
                ops.QuarantineRecord(
                    source, str(m), None, f"part of {unit.path.name}, quarantined: {first.reason}", first.kind
                )
            )
    summary.files[status] += len(all_paths)
    return records(status, accepted), quarantined


def _item_label(item: Item) -> str:
    if isinstance(item, FhirItem):
        return str(item.resource.get("resourceType", "fhir"))
    if isinstance(item, DicomItem):
        return "dicom"
    if isinstance(item, BiosignalItem):
        return item.format
    return "unknown"
