"""Reads and writes of the metadata store used by ingestion, the catalog and the CLI.

Each function is one short transaction on an Engine from `medhub.store.open_store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medhub.store.models import FileSeen, IngestRun, LakeCommit, QuarantineEntry, Source, utcnow

# files_seen statuses that mean "this content was fully processed for this source; skip it next time".
DONE_STATUSES = ("accepted", "partial", "quarantined")


@dataclass(frozen=True)
class FileRecord:
    """One input file's outcome, recorded with the commit that made its rows visible.

    `content_hash` is the hex digest of the file's bytes under `hash_algorithm` (e.g. 'blake3')."""

    path: str
    size: int
    content_hash: str
    hash_algorithm: str
    format: str | None
    status: str
    items: int = 0


@dataclass(frozen=True)
class QuarantineRecord:
    source_id: str
    file: str
    line: int | None
    reason: str
    kind: str = "rejected"
    stored_copy: str | None = None


def ensure_source(engine: Engine, source_id: str, name: str | None = None) -> None:
    with engine.begin() as conn:
        exists = conn.execute(sa.select(Source.id).where(Source.id == source_id)).first()
        if not exists:
            conn.execute(sa.insert(Source).values(id=source_id, name=name or source_id, created_at=utcnow()))


def start_run(engine: Engine, source_id: str) -> int:
    ensure_source(engine, source_id)
    with engine.begin() as conn:
        res = conn.execute(
            sa.insert(IngestRun).values(
                source_id=source_id,
                started_at=utcnow(),
                status="running",
                files=0,
                accepted=0,
                duplicate=0,
                quarantined=0,
            )
        )
        return int(res.inserted_primary_key[0])


def finish_run(
    engine: Engine,
    run_id: int,
    status: str,
    files: int,
    accepted: int,
    duplicate: int,
    quarantined: int,
    counts: dict | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(IngestRun)
            .where(IngestRun.id == run_id)
            .values(
                finished_at=utcnow(),
                status=status,
                files=files,
                accepted=accepted,
                duplicate=duplicate,
                quarantined=quarantined,
                counts_json=orjson.dumps(counts or {}).decode(),
            )
        )


def done_hashes(engine: Engine, source_id: str, hash_algorithm: str) -> set[str]:
    """Content hashes, under `hash_algorithm`, of the files already fully processed for this source.

    Files recorded under another algorithm (SHA-256 before migration 0002) are not among them:
    they are read again once, and the lake deduplicates their rows."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(FileSeen.content_hash)
            .where(
                FileSeen.source_id == source_id,
                FileSeen.hash_algorithm == hash_algorithm,
                FileSeen.status.in_(DONE_STATUSES),
            )
            .distinct()
        )
        return {r[0] for r in rows}


def committed_batches(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(LakeCommit.batch_id))}


def record_commit(
    engine: Engine,
    run_id: int,
    source_id: str,
    batch_id: str | None,
    lake_files: Sequence[str],
    rows: int,
    files: Iterable[FileRecord],
    quarantine: Iterable[QuarantineRecord] = (),
) -> None:
    """In one transaction: the lake commit (if any), the files it carries, and their quarantine entries.

    Until this returns, the lake files of `batch_id` do not count (recovery deletes them)."""
    now = utcnow()
    file_rows = [
        dict(
            source_id=source_id,
            run_id=run_id,
            path=f.path,
            size=f.size,
            content_hash=f.content_hash,
            hash_algorithm=f.hash_algorithm,
            format=f.format,
            status=f.status,
            items=f.items,
            batch_id=batch_id,
            seen_at=now,
        )
        for f in files
    ]
    q_rows = [
        dict(
            source_id=q.source_id,
            run_id=run_id,
            file=q.file,
            line=q.line,
            reason=q.reason,
            kind=q.kind,
            stored_copy=q.stored_copy,
            created_at=now,
        )
        for q in quarantine
    ]
    with engine.begin() as conn:
        if batch_id is not None:
            conn.execute(
                sa.insert(LakeCommit).values(
                    batch_id=batch_id,
                    run_id=run_id,
                    source_id=source_id,
                    committed_at=now,
                    rows=rows,
                    files=orjson.dumps(list(lake_files)).decode(),
                )
            )
        if file_rows:
            conn.execute(sa.insert(FileSeen), file_rows)
        if q_rows:
            conn.execute(sa.insert(QuarantineEntry), q_rows)


def list_quarantine(engine: Engine, source_id: str | None = None, limit: int | None = None) -> list[dict]:
    stmt = sa.select(QuarantineEntry).order_by(QuarantineEntry.id)
    if source_id:
        stmt = stmt.where(QuarantineEntry.source_id == source_id)
    if limit:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        out = []
        for r in conn.execute(stmt).mappings():
            d = dict(r)
            if isinstance(d.get("created_at"), datetime):
                d["created_at"] = d["created_at"].isoformat()
            out.append(d)
        return out


def list_files(engine: Engine, source_id: str | None = None) -> list[dict]:
    stmt = sa.select(FileSeen).order_by(FileSeen.id)
    if source_id:
        stmt = stmt.where(FileSeen.source_id == source_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def list_runs(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(IngestRun).order_by(IngestRun.id)).mappings()]


def list_sources(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(Source.id).order_by(Source.id))]
