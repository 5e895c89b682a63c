"""The FHIR gate's native pass over a whole Bundle, and what it asks of Python (its hooks).

`bundle_pass(name, data)` hands a Bundle's bytes to the C pass (`_fhir_bundle.c`), which parses
the document, de-identifies each entry's resource by the rules of `deid.fhir_elements.walk` and
writes its JSON exactly as `orjson.dumps` writes the walked dict, with no Python object per JSON
value. It returns, in entry order:
- a row tuple `(resourceType, id, JSON, patient reference, lastUpdated, sha256 digest of the
  JSON)` for each resource it de-identified itself (`ingest.records.FhirRow`: what the lake
  stores of a gated resource; the digest is None where the pass was built without OpenSSL's
  headers, `row_digests()` says which, and the lake hashes the JSON itself);
- for each entry it hands back (a Patient, an entry the reader rejects, a resource with escaped
  strings or duplicate keys, one a hook failed on), the outcome of the Python path for that entry:
  the reader's `Rejected`, the gated `FhirItem`, or a `GateFailure` holding the item and the error.
It returns None where the whole document is left to the Python path (not a Bundle with entries,
not JSON as orjson reads it, or something at the Bundle level the Python path must judge).

The hooks keep in Python whatever needs a key or a regular expression: the kind of a key
(`kind_of`), the patient's context and shift (`deid.fhir.resource_ctx`), free text, Patient
references, UIDs, identifier values (`identifier_value`), identifiers and notes of unusual
shapes, and numbers whose float form needs orjson. `native_available()` says whether the C pass
is built (it is optional, as the mypyc modules are; MEDHUB_PURE_PYTHON=1 turns it off).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import orjson

from medhub.ingest.fhir import bundle_entry_item
from medhub.ingest.pipeline import MAX_REJECTS_PER_FILE
from medhub.ingest.records import FhirItem, FhirRow, GateFailure, Rejected
from medhub.privacy.deid.common import Policy, SourceSecrets
from medhub.privacy.deid.fhir import PatientIndex, resource_ctx
from medhub.privacy.deid.fhir_elements import (
    Ctx,
    _note,
    identifier_value,
    identifiers,
    kind_of,
    patient_refs,
)
from medhub.privacy.deid.text import cleaned_text

try:
    from medhub.privacy.deid import _fhir_bundle
except ImportError:  # no C compiler where it was installed: the Python path does it all
    _fhir_bundle = None  # type: ignore[assignment]

_SOURCE = Path(__file__).with_name("_fhir_bundle.c")


def _built_from_this_source() -> bool:
    """Whether the built pass is of the C source beside it (where the source is there at all, as
    in a checkout): a pass built from an older source is not used, as `medhub._native` does for
    the mypyc modules; `make native` rebuilds it."""
    if _fhir_bundle is None or not _SOURCE.exists():
        return _fhir_bundle is not None
    if hashlib.sha256(_SOURCE.read_bytes()).hexdigest() == getattr(_fhir_bundle, "SOURCE_SHA256", ""):
        return True
    warnings.warn(
        "medhub: the FHIR Bundle pass was built from another version of _fhir_bundle.c: Bundles go "
        "through the Python gate until it is rebuilt (`make native`)",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


_CURRENT = _built_from_this_source()

IDENTIFIERS, NOTES = 0, 1  # hooks.subtree codes (see the C source)


def row_digests() -> bool:
    """Whether the built pass hashes the rows it writes (built with OpenSSL's libcrypto)."""
    return bool(getattr(_fhir_bundle, "ROW_DIGESTS", 0))


def native_available() -> bool:
    """Whether the C pass is built (from the source beside it) and not turned off (MEDHUB_PURE_PYTHON=1)."""
    return _CURRENT and os.environ.get("MEDHUB_PURE_PYTHON") != "1"


BundleOutcome = FhirRow | FhirItem | Rejected | GateFailure


class BundleHooks:
    """What the C pass asks of Python for one document (see the module docstring)."""

    __slots__ = ("name", "secrets", "policy", "index", "gate_item", "notes_clean", "rejects", "kind", "uid")

    def __init__(
        self,
        name: str,
        secrets: SourceSecrets,
        policy: Policy,
        index: PatientIndex,
        gate_item: Callable[[FhirItem], FhirItem],
    ) -> None:
        self.name, self.secrets, self.policy, self.index = name, secrets, policy, index
        self.gate_item = gate_item
        self.notes_clean = policy.fhir_notes == "clean"
        self.rejects = 0
        self.kind = kind_of
        self.uid = secrets.uid

    def resource(self, local: str | None, urls: dict[str, str] | None) -> tuple[int, bool, Ctx]:
        ctx = resource_ctx(local, self.secrets, self.policy, self.index, urls)
        return ctx.shift, ctx.unchecked, ctx

    @staticmethod
    def text(ctx: Ctx, value: str) -> str:
        return cleaned_text(ctx.matcher, ctx.shift or None, value)

    def patient_refs(self, value: str) -> str:
        return patient_refs(value, self.secrets)

    def ident_value(self, system: str, raw: str, accession: bool) -> str:
        return identifier_value(self.secrets, system, raw, accession)

    @staticmethod
    def subtree(code: int, ctx: Ctx, raw: bytes) -> bytes | None:
        value = orjson.loads(raw)
        if code == IDENTIFIERS:
            ids = identifiers(value, ctx)
            return orjson.dumps(ids) if ids else None
        if code == NOTES:
            return orjson.dumps([_note(n, ctx) for n in value if isinstance(n, dict)])
        raise ValueError(f"unknown subtree code {code}")

    @staticmethod
    def number(raw: bytes) -> bytes:
        return orjson.dumps(orjson.loads(raw))

    def fallback(self, index: int, raw: bytes, urls: dict[str, str] | None) -> list[BundleOutcome]:
        """Entry `index` by the Python path: the reader's item, then the gate, as the pipeline does."""
        if self.rejects >= MAX_REJECTS_PER_FILE:
            return []  # the pipeline stops reading this file here, as it does on the Python path
        item = bundle_entry_item(self.name, index, orjson.loads(raw), urls or {}, None, resolve=False)
        if type(item) is Rejected:
            self.rejects += 1
            return [item]
        try:
            return [self.gate_item(item)]
        except Exception as exc:  # noqa: BLE001 - the pipeline quarantines the item with the error
            return [GateFailure(item, exc)]


def bundle_pass(
    secrets: SourceSecrets, policy: Policy, index: PatientIndex, gate_item: Callable[[FhirItem], FhirItem]
) -> Callable[[str, bytes], list[BundleOutcome] | None]:
    """The gate's pass over a whole Bundle document for one source: `run(name, data)` gives the
    outcomes of its entries in order, or None where the document is the reader's and the gate's
    item by item (not a Bundle the pass takes, or the C pass not built). `gate_item` is the gate's
    FHIR step, not the gate itself: the gate holds this pass, and must stay free of a cycle."""

    def run(name: str, data: bytes) -> list[BundleOutcome] | None:
        if not native_available():
            return None
        return _fhir_bundle.deid_bundle(data, BundleHooks(name, secrets, policy, index, gate_item))

    return run
