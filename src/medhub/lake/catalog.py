"""The lake's catalog: one entry per dataset (kind, source, type) with row count, time range and size.

Read from the Parquet files themselves (footers for counts, DuckDB for time ranges), so it is
always what the lake holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from medhub.lake import layout


@dataclass(frozen=True)
class Dataset:
    kind: str  # fhir | dicom | biosignal
    source: str
    type: str  # FHIR resource type, DICOM modality set, biosignal format
    count: int
    files: int
    bytes: int  # Parquet bytes (a file shared by types is apportioned by rows), plus blob bytes
    time_min: str | None
    time_max: str | None

    def as_dict(self) -> dict:
        return asdict(self)


# Where a FHIR resource keeps its clinical time when meta.lastUpdated is absent.
_FHIR_DATES = (
    "$.effectiveDateTime",
    "$.period.start",
    "$.performedPeriod.start",
    "$.authoredOn",
    "$.onsetDateTime",
    "$.occurrenceDateTime",
    "$.billablePeriod.start",
    "$.issued",
    "$.recordedDate",
    "$.started",
)
_TIME = {
    layout.FHIR: "coalesce(last_updated, "
    + ", ".join(f"json_extract_string(resource, '{p}')" for p in _FHIR_DATES)
    + ")",
    layout.DICOM: "study_date",
    layout.BIOSIGNAL: "start",
}
_TYPE = {
    layout.FHIR: "resource_type",
    layout.DICOM: "coalesce(modality, '?')",
    layout.BIOSIGNAL: "format",
}
_BLOB_SIZE = {layout.DICOM: "blob_size", layout.BIOSIGNAL: "samples_size"}


def catalog(lake_dir: Path) -> list[Dataset]:
    """Every dataset in the lake, sorted by kind, source and type."""
    out: list[Dataset] = []
    con = duckdb.connect()
    try:
        for kind in (layout.FHIR, layout.DICOM, layout.BIOSIGNAL):
            files = sorted((lake_dir / kind).rglob("*.parquet")) if (lake_dir / kind).exists() else []
            if not files:
                continue
            by_file = {str(f): f.stat().st_size for f in files}
            blob = _BLOB_SIZE.get(kind, "0")
            rows = con.execute(
                f"""with t as (
                        select source, {_TYPE[kind]} as type, {_TIME[kind]} as ts, {blob} as blob, filename,
                               count(*) over (partition by filename) as file_rows
                        from read_parquet(?, hive_partitioning=false, filename=true, union_by_name=true))
                    select source, type, count(*), min(ts), max(ts), sum(blob)::BIGINT,
                           list(distinct filename), list(filename), list(file_rows)
                    from t group by all order by 1, 2""",
                [list(by_file)],
            ).fetchall()
            for source, typ, n, tmin, tmax, blob_bytes, fnames, row_files, row_counts in rows:
                # a file shared by several types (DICOM modalities) is apportioned by rows
                parquet_bytes = sum(by_file.get(f, 0) / c for f, c in zip(row_files, row_counts, strict=True))
                out.append(
                    Dataset(
                        kind,
                        source,
                        str(typ),
                        int(n),
                        len(fnames),
                        round(parquet_bytes) + int(blob_bytes or 0),
                        tmin and str(tmin),
                        tmax and str(tmax),
                    )
                )
    finally:
        con.close()
    return out
