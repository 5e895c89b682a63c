"""The privacy gate: `make_gate(settings, source)` returns the function every ingested item passes.

Per source, with keys from the key store (settings.key_dir, never under the hub home):
- direct identifiers become keyed pseudonyms (HMAC-SHA256), the same patient pseudonym for a
  patient's FHIR resources, DICOM instances and biosignal records;
- each modality is de-identified (`deid.fhir`, `deid.dicom`, `deid.biosignal`) with one secret
  per-patient date shift and one keyed UID remapping;
- a DICOM image at risk of burned-in text raises HeldForReview (the pipeline quarantines it).

FHIR items (their resources too) and DICOM datasets are changed in place (no copy of pixel data);
biosignal items are replaced by a de-identified copy that shares the sample arrays. The FHIR walk
also resolves a Bundle entry's `urn:uuid:` references (the reader leaves them to it: one walk
instead of two).
"""

from __future__ import annotations

from medhub.config import Settings
from medhub.ingest.records import RESOLVES_REFS, BiosignalItem, DicomItem, FhirItem, Gate, Item
from medhub.privacy.deid.biosignal import deid_record
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.dicom import deid_dataset
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.linkage.intake import linkage_depositor


def make_gate(settings: Settings, source: str) -> Gate:
    """The gate for one source under the data center's default policy: Item -> de-identified Item,
    or HeldForReview."""
    return gate_with_policy(settings, source, Policy())


def gate_with_policy(settings: Settings, source: str, policy: Policy) -> Gate:
    """The gate for one source under an explicit de-identification policy."""
    secrets = source_secrets(settings, source)
    patients = PatientIndex()
    deposit = linkage_depositor(settings, source, secrets.patient)  # Patient identities -> linkage tokens

    def gate(item: Item) -> Item:
        if isinstance(item, FhirItem):
            deposit(item.resource)  # before de-identification: plaintext never leaves the source
            item.resource = deid_resource(item.resource, secrets, policy, patients, refs=item.refs)
            item.refs = None  # the walk resolved the Bundle's references
            return item  # the item as it came, de-identified (no new item per resource)
        if isinstance(item, DicomItem):
            dataset = deid_dataset(item.dataset, secrets, policy, known=patients.get)
            return DicomItem(item.source_file, dataset)
        if isinstance(item, BiosignalItem):
            return deid_record(item, secrets, policy, known=patients.get)
        raise TypeError(f"the privacy gate does not know items of type {type(item).__name__}")

    deposit.bind(gate)
    setattr(gate, RESOLVES_REFS, True)  # the de-identifying walk resolves Bundle references (deid.fhir)
    return gate
