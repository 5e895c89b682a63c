"""Where things live in the lake, and the column contract of each dataset.

This module is the contract between writers (ingestion) and readers (views, catalog,
governance). Paths are Hive-partitioned so DuckDB can read them with
`read_parquet(glob, hive_partitioning=true)`.

    lake/
      fhir/source=<source>/resource_type=<Type>/<batch>.parquet   FHIR_SCHEMA
      dicom/source=<source>/<batch>.parquet                       DICOM_SCHEMA (header metadata)
      biosignal/source=<source>/<batch>.parquet                   BIOSIGNAL_SCHEMA (record metadata)
      blobs/<hh>/<sha256>                                         content-addressed files: de-identified
                                                                  DICOM files; biosignal samples as
                                                                  Parquet (SAMPLES_SCHEMA)
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


# One row per DICOM instance; the de-identified Part-10 file is the blob `blob_sha256`.
DICOM_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("sop_instance_uid", pa.string(), nullable=False),
        pa.field("sop_class_uid", pa.string()),
        pa.field("study_instance_uid", pa.string()),
        pa.field("series_instance_uid", pa.string()),
        pa.field("patient_ref", pa.string()),  # "Patient/<pseudonym>" from the gated PatientID
        pa.field("modality", pa.string()),
        pa.field("body_part", pa.string()),
        pa.field("study_date", pa.string()),  # DICOM DA as sent after the gate (YYYYMMDD)
        pa.field("rows", pa.int32()),
        pa.field("columns", pa.int32()),
        pa.field("frames", pa.int32()),
        pa.field("transfer_syntax", pa.string()),
        pa.field("blob_sha256", pa.string(), nullable=False),
        pa.field("blob_size", pa.int64(), nullable=False),
        pa.field("header", pa.string()),  # JSON: chosen header attributes by keyword (writer.HEADER_KEYWORDS)
    ]
)

# One row per biosignal record; the samples are the blob `samples_sha256` (Parquet, SAMPLES_SCHEMA).
BIOSIGNAL_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),  # record name after the gate
        pa.field("format", pa.string(), nullable=False),  # wfdb | edf
        pa.field("patient_ref", pa.string()),
        pa.field("start", pa.string()),  # ISO 8601, after the gate
        pa.field("duration_s", pa.float64()),
        pa.field("n_channels", pa.int32()),
        pa.field("channels", pa.string()),  # JSON list: name, units, fs, gain, baseline, n_samples
        pa.field("patient", pa.string()),  # JSON object (EDF+ patient fields after the gate)
        pa.field("recording", pa.string()),  # JSON object
        pa.field("comments", pa.string()),  # JSON list (WFDB header comments after the gate)
        pa.field("annotations", pa.string()),  # JSON list of [onset_s, duration_s, text]
        pa.field("samples_sha256", pa.string(), nullable=False),
        pa.field("samples_size", pa.int64(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
    ]
)

# The samples of one record: one row per channel, digital values as stored, with what turns
# them into physical units: physical = (digital - baseline) / gain.
SAMPLES_SCHEMA = pa.schema(
    [
        pa.field("channel", pa.int32(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("units", pa.string()),
        pa.field("fs", pa.float64()),
        pa.field("gain", pa.float64()),
        pa.field("baseline", pa.float64()),
        pa.field("samples", pa.list_(pa.int32()), nullable=False),
    ]
)

SCHEMAS = {FHIR: FHIR_SCHEMA, DICOM: DICOM_SCHEMA, BIOSIGNAL: BIOSIGNAL_SCHEMA}


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


def dataset_glob(lake_dir: Path, kind: str) -> str:
    """Glob over every Parquet file of one kind (fhir, dicom, biosignal); use with hive_partitioning."""
    if kind == FHIR:
        return fhir_glob(lake_dir)
    return str(lake_dir / kind / "*" / "*.parquet")
