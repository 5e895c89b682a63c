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
instead of two). A whole Bundle document can instead go through the gate's native pass
(`deid.fhir_bundle`), which yields the stored rows of the resources it de-identifies itself and
puts every other entry through this same gate, in entry order.
"""

from __future__ import annotations

from medhub.config import Settings
from medhub.ingest.records import BUNDLE_PASS, RESOLVES_REFS, BiosignalItem, DicomItem, FhirItem, Gate, Item
from medhub.privacy.deid.biosignal import deid_record
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.dicom import deid_dataset
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.deid.fhir_bundle import bundle_pass
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

    def gate_fhir(item: FhirItem) -> FhirItem:
        deposit(item.resource)  # before de-identification: plaintext never leaves the source
        item.resource = deid_resource(item.resource, secrets, policy, patients, refs=item.refs)
        item.refs = None  # the walk resolved the Bundle's references
        return item  # the item as it came, de-identified (no new item per resource)

    def gate(item: Item) -> Item:
        if isinstance(item, FhirItem):
            return gate_fhir(item)
        if isinstance(item, DicomItem):
            dataset = deid_dataset(item.dataset, secrets, policy, known=patients.get)
            return DicomItem(item.source_file, dataset)
        if isinstance(item, BiosignalItem):
            return deid_record(item, secrets, policy, known=patients.get)
        raise TypeError(f"the privacy gate does not know items of type {type(item).__name__}")

    deposit.bind(gate)
    setattr(gate, RESOLVES_REFS, True)  # the de-identifying walk resolves Bundle references (deid.fhir)
    # Whole Bundles (deid.fhir_bundle). The pass holds gate_fhir, not the gate, so that the gate is
    # freed (and the depositor bound to it flushes) as soon as its ingest lets go of it.
    setattr(gate, BUNDLE_PASS, bundle_pass(secrets, policy, patients, gate_fhir))
    return gate
