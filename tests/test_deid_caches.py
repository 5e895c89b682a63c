"""clear_caches empties what FHIR de-identification keeps between resources."""

from __future__ import annotations

from medhub.config import Settings
from medhub.privacy.deid import clear_caches, fhir, fhir_elements, text
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.fhir import PatientIndex, deid_resource


def test_clear_caches_leaves_nothing_cached(settings: Settings) -> None:
    secrets, index = source_secrets(settings, "h"), PatientIndex()
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Kim"}]}
    deid_resource(patient, secrets, Policy(), index)
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2020-01-02T03:04:05+09:00",
        "identifier": [{"system": "urn:lab", "value": "L1"}],
        "valueString": "seen by Kim on 2020-01-02",
    }
    out = deid_resource(obs, secrets, Policy(), index)
    assert out["effectiveDateTime"] != "2020-01-02T03:04:05+09:00"
    caches = (fhir_elements._SHIFTED, fhir_elements._REFS, fhir_elements._IDS, fhir._LOCALS)
    assert text.text_cache_size() > 0 and all(caches)
    clear_caches()
    assert text.text_cache_size() == 0 and not any(caches)
