"""What the lake keeps of one gated FHIR resource, and the buffer its row waits in (compiled with
mypyc, see `medhub._native`: this runs once per resource ingested).

`fhir_row(resource)` gives the resource's JSON as stored, its sha256 (the row's content hash) and
the key columns views and readers filter on: type, id, the patient it is about, lastUpdated.
`FhirRows` holds the rows of one resource type until the writer flushes them as a row group, and
`add_fhir_row` puts a resource's row in its type's buffer unless its content hash is known: the
whole per-resource step of the lake writer in one compiled call (`add_fhir_jsons` the same for the
resources of a Bundle the gate's pass already serialized, a document at a time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

import orjson

_PATIENT_KEYS: Final = ("subject", "patient", "beneficiary")


def patient_ref(resource: dict[str, Any]) -> str | None:
    """`Patient/<id>` for a Patient, else the Patient reference in subject/patient/beneficiary."""
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource['id']}"
    for k in _PATIENT_KEYS:
        v = resource.get(k)
        if isinstance(v, dict):
            ref = v.get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                return ref
    return None


def fhir_row(resource: dict[str, Any]) -> tuple[str, bytes, bytes, str, str | None, str | None]:
    """(resourceType, the JSON stored, its sha256 digest, id, patient reference, meta.lastUpdated)."""
    text: bytes = orjson.dumps(resource)
    meta = resource.get("meta")
    last = meta.get("lastUpdated") if type(meta) is dict else None
    return (
        str(resource["resourceType"]),
        text,
        hashlib.sha256(text).digest(),
        str(resource["id"]),
        patient_ref(resource),
        last if isinstance(last, str) else None,
    )


ROW_OVERHEAD: Final = 200  # bytes a row costs the buffer beyond its JSON (key columns, offsets, hash)


class FhirRows:
    """The buffered rows of one resource type: the key columns as lists, the resources' JSON and
    their content hashes (32-byte digests) as the bytes objects they came in, joined once when the
    rows are written (`joined_text`, `joined_digests`: appending each to one growing buffer cost a
    copy of the buffer at each growth); `pending_bytes` is what the rows count against the
    writer's memory budget."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.patient_refs: list[str | None] = []
        self.last_updated: list[str | None] = []
        self.texts: list[bytes] = []
        self.digests: list[bytes] = []
        self.pending = 0
        self.pending_bytes = 0

    def clear(self) -> None:
        """Forget the rows (written): fresh lists, since what was handed to Arrow may be held."""
        self.ids = []
        self.patient_refs = []
        self.last_updated = []
        self.texts = []
        self.digests = []
        self.pending = 0
        self.pending_bytes = 0

    def joined_text(self) -> bytes:
        """The rows' JSON, one after another (the string column's data)."""
        return b"".join(self.texts)

    def joined_digests(self) -> bytes:
        """The rows' 32-byte sha256 digests, one after another."""
        return b"".join(self.digests)


def add_fhir_row(
    resource: dict[str, Any],
    buffers: dict[str, FhirRows],
    buffer_for: Callable[[str], FhirRows],
    known: set[bytes],
    new: set[bytes],
) -> tuple[str, int]:
    """Buffer the row of `resource` in `buffers[its type]` (`buffer_for(type)` makes a missing
    one) unless the first 8 bytes of its content hash are in `known` (the lake's) or `new` (this
    batch's, which gains them). Returns (resource type, bytes buffered: 0 for a duplicate)."""
    rtype, text, digest, rid, pref, last_updated = fhir_row(resource)
    return _buffer_row(rtype, text, digest, rid, pref, last_updated, buffers, buffer_for, known, new)


def add_fhir_jsons(
    rows: list[tuple[str, str, bytes, str | None, str | None, bytes | None]],
    buffers: dict[str, FhirRows],
    buffer_for: Callable[[str], FhirRows],
    known: set[bytes],
    new: set[bytes],
    added: dict[str, int],
    duplicates: dict[str, int],
) -> int:
    """`add_fhir_row` for resources already gated and serialized (`ingest.records.FhirRow`: type,
    id, the JSON as stored, patient reference, lastUpdated, and the JSON's sha256 digest where the
    gate's pass computed it as it wrote the JSON, else None: hashed here), into the same buffer;
    counted per type in `added` and `duplicates`. Returns the bytes buffered (one call per Bundle)."""
    total = 0
    for row in rows:
        rtype, rid, text, pref, last_updated, known_digest = row
        digest = known_digest if known_digest is not None else hashlib.sha256(text).digest()
        _, n = _buffer_row(rtype, text, digest, rid, pref, last_updated, buffers, buffer_for, known, new)
        if n:
            added[rtype] = added.get(rtype, 0) + 1
            total += n
        else:
            duplicates[rtype] = duplicates.get(rtype, 0) + 1
    return total


def _buffer_row(
    rtype: str,
    text: bytes,
    digest: bytes,
    rid: str,
    pref: str | None,
    last_updated: str | None,
    buffers: dict[str, FhirRows],
    buffer_for: Callable[[str], FhirRows],
    known: set[bytes],
    new: set[bytes],
) -> tuple[str, int]:
    key = digest[:8]
    if key in known or key in new:
        return rtype, 0
    rows = buffers.get(rtype)
    if rows is None:
        rows = buffer_for(rtype)
    new.add(key)
    rows.ids.append(rid)
    rows.patient_refs.append(pref)
    rows.last_updated.append(last_updated)
    rows.digests.append(digest)
    rows.texts.append(text)
    n = len(text) + ROW_OVERHEAD
    rows.pending += 1
    rows.pending_bytes += n
    return rtype, n
