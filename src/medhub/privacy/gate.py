"""The privacy gate: `make_gate(settings, source)` returns the function every ingested item passes.

The gate replaces direct identifiers by keyed pseudonyms (keys from the key store, per source,
outside the hub home) and de-identifies each modality; it raises HeldForReview for an item that
may not pass without a person's review (a DICOM image at risk of burned-in text).
"""

from __future__ import annotations

from medhub.config import Settings
from medhub.ingest.records import BiosignalItem, DicomItem, FhirItem, Gate, Item
from medhub.privacy.deid.biosignal import deid_record
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.dicom import deid_dataset
from medhub.privacy.deid.fhir import deid_resource


def make_gate(settings: Settings, source: str) -> Gate:
    """The gate for one source with the data center's default policy: Item -> de-identified Item,
    or HeldForReview. DICOM datasets are changed in place (no copy of pixel data)."""
    return gate_with_policy(settings, source, Policy())


def gate_with_policy(settings: Settings, source: str, policy: Policy) -> Gate:
    """The gate for one source under an explicit de-identification policy."""
    secrets = source_secrets(settings, source)
    pol = policy

    def gate(item: Item) -> Item:
        if isinstance(item, FhirItem):
            return FhirItem(item.source_file, deid_resource(item.resource, secrets, pol), item.line)
        if isinstance(item, DicomItem):
            return DicomItem(item.source_file, deid_dataset(item.dataset, secrets, pol))
        if isinstance(item, BiosignalItem):
            return deid_record(item, secrets, pol)
        raise TypeError(f"the privacy gate does not know items of type {type(item).__name__}")

    return gate
