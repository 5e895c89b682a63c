"""The items ingestion yields: what a reader produces and what the privacy gate consumes.

This module is the contract between `ingest` (readers), `privacy` (the gate) and `lake`
(the writer). Readers never raise on bad input: they yield `Rejected` for the bad item and
go on with the rest of the file where that is possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pydicom


@dataclass(frozen=True)
class Rejected:
    """A bad item: the file, the line (where there is one) and the problem, in words a person can act on."""

    source_file: str
    reason: str
    line: int | None = None


@dataclass(slots=True)
class FhirItem:
    """One FHIR R4 resource as sent. Bundle entries arrive one by one, with `urn:uuid:`
    references resolved to `Type/id` by the reader; or, for a gate that resolves them in its own
    walk (`resolves_bundle_references`), left as sent with the Bundle's fullUrl map in `refs`."""

    source_file: str
    resource: dict[str, Any]
    line: int | None = None
    refs: dict[str, str] | None = None  # fullUrl -> "Type/id", where references are left to the gate


@dataclass
class DicomItem:
    """One DICOM Part-10 file, parsed (pixel data included, not decoded)."""

    source_file: str
    dataset: pydicom.Dataset


@dataclass
class Channel:
    name: str
    units: str
    fs: float  # samples per second
    gain: float  # digital units per physical unit (WFDB adc_gain; for EDF derived from the ranges)
    baseline: float  # digital value of physical zero
    n_samples: int


@dataclass
class Annotation:
    onset_s: float
    duration_s: float
    text: str


@dataclass
class BiosignalItem:
    """One biosignal record (WFDB or EDF+): header fields as sent, and per-channel digital samples."""

    source_file: str
    format: Literal["wfdb", "edf"]
    record_name: str
    start: datetime | None
    channels: list[Channel]
    samples: list[np.ndarray]  # one 1-D array of digital values per channel
    patient: dict[str, str] = field(default_factory=dict)  # EDF+: code, name, sex, birthdate, additional
    recording: dict[str, str] = field(default_factory=dict)  # EDF+: admincode, technician, equipment, ...
    comments: list[str] = field(default_factory=list)  # WFDB header comments
    annotations: list[Annotation] = field(default_factory=list)


Item = FhirItem | DicomItem | BiosignalItem


class HeldForReview(Exception):
    """Raised by a gate for an item that may not pass without a person's review
    (for example a DICOM image at risk of burned-in text). The pipeline quarantines it."""


# A gate takes one item from a source and returns it with identities removed, or raises
# HeldForReview. It must never return an item that still carries a direct identifier. A gate
# whose attribute `resolves_bundle_references` is true gets Bundle entries with their references
# unresolved and `FhirItem.refs` set, and must return them resolved (refs None).
Gate = Callable[[Item], Item]
RESOLVES_REFS = "resolves_bundle_references"
BUNDLE_PASS = "bundle_pass"

# A FHIR resource the gate de-identified and serialized in one pass over its Bundle, as the lake
# stores it: (resourceType, id, the JSON, patient reference, meta.lastUpdated, the JSON's SHA-256
# digest or None where the pass leaves it to the lake) - see `privacy.deid.fhir_bundle`. The
# pipeline hands it to the sink as it is.
FhirRow = tuple[str, str, bytes, str | None, str | None, bytes | None]


@dataclass(slots=True)
class GateFailure:
    """An item the gate could not de-identify in a Bundle pass: the pipeline quarantines it with the error."""

    item: FhirItem
    error: Exception


def gate_bundle_pass(gate: Gate) -> Callable[[str, bytes], list | None] | None:
    """The gate's pass over a whole Bundle document, where it has one: (file name, bytes) -> the
    outcomes of its entries in order (FhirRow, gated FhirItem, Rejected, or a failure holding the
    item and the error), or None where the document is left to the reader and the gate item by item."""
    return getattr(gate, BUNDLE_PASS, None)


def gate_resolves_refs(gate: Gate) -> bool:
    """Whether `gate` resolves Bundle `urn:uuid:` references itself (the reader then leaves them)."""
    return getattr(gate, RESOLVES_REFS, False) is True
