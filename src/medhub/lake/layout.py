"""Where things live in the lake, and the column contract of each dataset.

This module is the contract between writers (ingestion) and readers (views, catalog,
governance). Paths are Hive-partitioned so DuckDB can read them with
`read_parquet(glob, hive_partitioning=true)`.

    lake/
      fhir/source=<source>/resource_type=<Type>/<batch>.parquet   FHIR_SCHEMA
      dicom/source=<source>/<batch>.parquet                       DICOM metadata rows
      biosignal/source=<source>/<batch>.parquet                   biosignal metadata rows
      blobs/<hh>/<sha256>                                         content-addressed files
      views/<name>.parquet                                        materialized views

A batch file is written under the staging directory and renamed into place only when
complete, so readers never see half-written files.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

FHIR = "fhir"
DICOM = "dicom"
BIOSIGNAL = "biosignal"
BLOBS = "blobs"
VIEWS = "views"

# One row per FHIR resource. `resource` holds the full (gated) resource as JSON text.
FHIR_SCHEMA = pa.schema(
    [
        pa.field("resource_type", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("patient_ref", pa.string()),  # "Patient/<pseudonym>" or null
        pa.field("last_updated", pa.string()),  # ISO 8601 as sent (after any date shift)
        pa.field("source", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),  # sha256 of the gated resource JSON
        pa.field("resource", pa.string(), nullable=False),
    ]
)


def fhir_dir(lake_dir: Path, source: str | None = None, resource_type: str | None = None) -> Path:
    d = lake_dir / FHIR
    if source is not None:
        d = d / f"source={source}"
        if resource_type is not None:
            d = d / f"resource_type={resource_type}"
    return d


def fhir_glob(lake_dir: Path) -> str:
    """Glob over every FHIR Parquet file in the lake (use with hive_partitioning)."""
    return str(lake_dir / FHIR / "*" / "*" / "*.parquet")


def dataset_dir(lake_dir: Path, kind: str, source: str) -> Path:
    return lake_dir / kind / f"source={source}"


def blob_path(lake_dir: Path, sha256_hex: str) -> Path:
    return lake_dir / BLOBS / sha256_hex[:2] / sha256_hex


def view_path(lake_dir: Path, name: str) -> Path:
    return lake_dir / VIEWS / f"{name}.parquet"
