"""The FHIR element walk's plans (Reference, CodeableConcept, Period, Money, Quantity, Meta,
adjudication records) give what the generic walk gives on real resources, and a shape a plan
does not know still goes through the generic walk."""

from __future__ import annotations

import copy
import itertools
import json
import tarfile
from datetime import date
from pathlib import Path

import pytest

from medhub.config import Settings
from medhub.ingest import detect
from medhub.ingest.fhir import read_json, read_ndjson
from medhub.ingest.plan import plan
from medhub.ingest.records import FhirItem
from medhub.privacy.deid import fhir_elements
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.deid.text import cleaned_text
from medhub.shared_data import shared_path
from medhub.synth import generate

TODAY = date(2026, 12, 3)
POLICIES = (
    Policy(),
    Policy(fhir_notes="clean", address_level=2, postcode_digits=0),
    Policy(shift_dates=False),
)


def _generic_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dict through the generic loop: no datatype plan, Meta a plain element."""
    monkeypatch.setattr(fhir_elements, "element", fhir_elements.walk)
    monkeypatch.setattr(fhir_elements, "_period", fhir_elements.walk)
    monkeypatch.setitem(fhir_elements.KINDS, "meta", fhir_elements.PLAIN)
    fhir_elements._REFS.clear()
    cleaned_text.cache_clear()


def _deid_all(settings: Settings, resources: list[dict], policy: Policy) -> list[dict]:
    secrets, index = source_secrets(settings, "plans"), PatientIndex()
    return [deid_resource(copy.deepcopy(r), secrets, policy, index, TODAY) for r in resources]


def _same_with_and_without_plans(
    settings: Settings, resources: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = [_deid_all(settings, resources, p) for p in POLICIES]
    with monkeypatch.context() as m:
        _generic_only(m)
        generic = [_deid_all(settings, resources, p) for p in POLICIES]
    for a, b in zip(planned, generic, strict=True):
        assert json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


def _fhir_items(paths: list[Path]) -> list[dict]:
    out = []
    for u in plan(paths):
        reader = read_ndjson if u.format == detect.NDJSON else read_json
        out += [it.resource for it in reader(u.path) if isinstance(it, FhirItem)]
    return out


def test_plans_match_the_generic_walk_on_synthetic_hospitals(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(tmp_path / "synth", hospitals=2, patients=12, seed=5)  # one NDJSON, one Bundle hospital
    resources = []
    for h in ("hospital-a", "hospital-b"):
        resources += _fhir_items([tmp_path / "synth" / h / "fhir"])
    assert len({r["resourceType"] for r in resources}) >= 6
    _same_with_and_without_plans(settings, resources, monkeypatch)


def test_plans_match_the_generic_walk_on_synthea(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = shared_path("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")
    if tgz is None:
        pytest.skip("../shared/data/synthea is absent")
    resources: list[dict] = []
    with tarfile.open(tgz) as tar:
        bundles = (m for m in tar if m.isfile() and m.name.endswith(".json"))
        for m in itertools.islice(bundles, 3):  # three patients' bundles
            items = read_json(Path(m.name), tar.extractfile(m).read())
            resources += [it.resource for it in items if isinstance(it, FhirItem)]
    assert {"ExplanationOfBenefit", "Claim", "Observation", "Encounter"} <= {
        r["resourceType"] for r in resources
    }
    _same_with_and_without_plans(settings, resources, monkeypatch)


MRN = "MRN0042"
PATIENT = {
    "resourceType": "Patient",
    "id": MRN,
    "name": [{"family": "홍", "given": ["길동"]}],
    "telecom": [{"system": "phone", "value": "010-1234-5678"}],
}


def test_shapes_no_plan_knows_go_through_the_generic_walk(settings: Settings) -> None:
    """A key beside a datatype's own keys sends the element to the generic walk, which cleans,
    shifts and rewrites everything under it as strictly as anywhere else."""
    secrets, index = source_secrets(settings, "plans"), PatientIndex()
    deid_resource(copy.deepcopy(PATIENT), secrets, Policy(), index, TODAY)
    leak = "홍길동 010-1234-5678"
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {
            "reference": f"Patient/{MRN}",
            "display": "홍길동",
            "extension": [{"url": "x", "valueString": leak}],
        },
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "1"}],
            "text": "x",
            "extension": [{"url": "y", "valueReference": {"reference": f"Patient/{MRN}"}}],
        },
        "valueQuantity": {"value": 1, "unit": "mg", "extension": [{"url": "z", "valueString": leak}]},
        "performedPeriod": {"start": "2024-03-01", "end": {"extension": [{"url": "w", "valueString": leak}]}},
        "cost": {"value": 1, "currency": "KRW", "comment": leak},
        "adjudication": [{"category": {"text": leak}, "amount": {"value": 2, "currency": "KRW"}}],
        "meta": {
            "lastUpdated": "2024-03-02T09:00:00Z",
            "tag": [{"display": "홍길동"}],
            "extra": f"Patient/{MRN}",
        },
    }
    out = deid_resource(obs, secrets, Policy(), index, TODAY)
    text = json.dumps(out, ensure_ascii=False)
    for secret in ("홍길동", "010-1234-5678", MRN):
        assert secret not in text
    assert "display" not in out["subject"]
    assert out["performedPeriod"]["start"] != "2024-03-01"
    assert out["meta"]["lastUpdated"] != "2024-03-02T09:00:00Z"
    assert out["meta"]["tag"] == [{}]  # not a Coding (no code, no system): its display went


def test_unseen_patients_free_text_dropped_in_plans(settings: Settings) -> None:
    """A CodeableConcept's text, in a plan or not, is dropped where the patient was never seen."""
    secrets, index = source_secrets(settings, "plans"), PatientIndex()
    obs = {
        "resourceType": "Observation",
        "id": "o2",
        "subject": {"reference": "Patient/unseen"},
        "code": {"coding": [{"code": "1"}], "text": "홍길동"},
        "category": [{"text": "홍길동"}],
    }
    out = deid_resource(obs, secrets, Policy(), index, TODAY)
    assert out["code"] == {"coding": [{"code": "1"}]} and out["category"] == [{}]
