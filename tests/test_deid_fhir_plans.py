"""The FHIR element walk's plans (Reference, CodeableConcept, Period, Money, Quantity, Meta,
adjudication records) give what the generic walk gives on real resources, and a shape a plan
does not know still goes through the generic walk."""

from __future__ import annotations

import copy
import itertools
import json
import tarfile
from datetime import date, timedelta
from pathlib import Path

import pytest

from medhub import _native
from medhub.config import Settings
from medhub.ingest import detect
from medhub.ingest.fhir import read_json, read_ndjson
from medhub.ingest.plan import plan
from medhub.ingest.records import FhirItem
from medhub.privacy.deid import fhir_elements
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.deid.text import cleaned_text, clear_text_cache, text_cache_size
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
    if "medhub.privacy.deid.fhir_elements" in _native.compiled_modules():
        # compiled code calls the walk's functions directly, past any patch: tests/test_native.py
        # runs this file again on the Python source (MEDHUB_PURE_PYTHON=1)
        pytest.skip("patches the walk's functions: runs on the Python source in tests/test_native.py")
    monkeypatch.setattr(fhir_elements, "element", fhir_elements.walk)
    monkeypatch.setattr(fhir_elements, "_period", fhir_elements.walk)
    monkeypatch.setitem(fhir_elements.KINDS, "meta", fhir_elements.PLAIN)
    fhir_elements._REFS.clear()
    clear_text_cache()


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


def test_one_key_shapes_settled_inline_match_the_generic_walk(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-key References and Codings-only concepts, settled in the walk without a call (in dicts and
    in lists, nested lists too), give what the generic walk gives, odd contents included."""
    patient = {"resourceType": "Patient", "id": MRN, "name": [{"family": "Kim", "given": ["Minjun"]}]}
    obs = {
        "resourceType": "Observation",
        "id": "o3",
        "subject": {"reference": f"Patient/{MRN}"},
        "focus": [{"reference": f"Patient/{MRN}"}, {"reference": "2024-03-01"}, {"reference": 7}],
        "basedOn": [[{"reference": f"Patient/{MRN}"}], [{"coding": [{"code": "x"}]}]],
        "partOf": {"reference": {"reference": f"Patient/{MRN}"}},
        "code": {"coding": [{"code": "1", "display": "Minjun Kim"}, {"extension": [{"valueString": "Kim"}]}]},
        "category": [{"coding": []}, {"text": "Minjun Kim"}],
        "derivedFrom": [f"Patient/{MRN}", "2024-03-01T10:00:00+09:00", "plain"],
        "effectivePeriod": {"start": "2024-03-01T10:00:00+09:00", "end": f"Patient/{MRN}"},
        "issued": "2024-02-30T10:00:00Z",  # not a calendar day: kept
    }
    _same_with_and_without_plans(settings, [patient, obs], monkeypatch)
    secrets, index = source_secrets(settings, "plans"), PatientIndex()
    deid_resource(copy.deepcopy(patient), secrets, Policy(), index, TODAY)
    out = deid_resource(copy.deepcopy(obs), secrets, Policy(), index, TODAY)
    ref = "Patient/" + secrets.patient(MRN)
    day = (date(2024, 3, 1) + timedelta(days=secrets.shift_days(MRN))).isoformat()
    assert out["subject"] == {"reference": ref} and out["partOf"] == {"reference": {"reference": ref}}
    assert out["focus"] == [{"reference": ref}, {"reference": day}, {"reference": 7}]
    assert out["basedOn"] == [[{"reference": ref}], [{"coding": [{"code": "x"}]}]]
    # a Coding passes as it is; an item of `coding` with more than a Coding's keys (here an
    # extension with free text) is walked like any element
    odd = {"extension": [{"valueString": "***"}]}
    assert out["code"] == {"coding": [{"code": "1", "display": "Minjun Kim"}, odd]}
    assert out["category"] == [{"coding": []}, {"text": "***"}]
    assert out["derivedFrom"] == [ref, f"{day}T10:00:00+09:00", "plain"]
    assert out["effectivePeriod"] == {"start": f"{day}T10:00:00+09:00", "end": ref}
    assert out["issued"] == "2024-02-30T10:00:00Z"


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01T10:00:00+09:00",
        "2024-02-29T23:59:59.123Z",
        "2023-02-29T10:00:00Z",  # not a calendar day: kept as it is
        "2024-13-01T10:00:00Z",
        "2024-03-01",
        "2024-03",
        "2024",
        "2024-03-01T10:00",
        "2024-03-01T1",  # not date-shaped
        "0001-01-05T00:00:00Z",
    ],
)
def test_shifted_date_keeps_shift_fhirs_result(value: str) -> None:
    """A dateTime's day is shifted on its own (cached per day) and its time appended: the same as
    shifting the whole value."""
    from medhub.privacy.deid.dates import shift_fhir

    for shift in (-180, -3650, -1):
        fhir_elements.clear_date_cache()
        try:
            want = (shift_fhir(value, shift) or value) if fhir_elements.DATE_VALUE.match(value) else None
        except OverflowError:
            with pytest.raises(OverflowError):
                fhir_elements.shifted_date(value, shift)
            continue
        assert fhir_elements.shifted_date(value, shift) == want


def test_patient_of_a_reference_is_cached_alike(settings: Settings) -> None:
    """Whose patient a resource is about, asked again for the same reference (cached), is the same
    answer; a reference with no valid patient id in it names no patient, then and later."""
    from medhub.privacy.deid.fhir import _patient_of

    for _ in range(2):
        assert _patient_of({"resourceType": "Observation", "subject": {"reference": "Patient/p-1"}}) == "p-1"
        assert _patient_of({"resourceType": "Observation", "subject": {"reference": "xPatient/p-1"}}) is None
        assert _patient_of({"resourceType": "Observation", "subject": {"reference": "Patient/"}}) is None
        assert (
            _patient_of(
                {
                    "resourceType": "Group",
                    "member": [
                        {"entity": {"reference": "Patient/"}},
                        {"entity": {"reference": "Patient/g2"}},
                    ],
                }
            )
            == "g2"
        )


def test_long_texts_are_cleaned_alike_but_not_cached() -> None:
    """The text cache keeps short texts only (memory bounded by entries, not by the input's texts):
    a long text is cleaned exactly as a short one, and leaves the cache as it was."""
    from medhub.privacy.deid.text import CACHED_TEXT_CHARS, Matcher

    matcher = Matcher(names=["Minjun Kim"], ids=["900101-1234567"])
    short = "seen by Minjun Kim, id 900101-1234567, on 2020-01-02"
    long = short + " " + "x" * CACHED_TEXT_CHARS
    clear_text_cache()
    short_out = cleaned_text(matcher, 3, short)
    assert "Minjun" not in short_out and "1234567" not in short_out and "2020-01-05" in short_out
    assert text_cache_size() == 1
    long_out = cleaned_text(matcher, 3, long)
    assert text_cache_size() == 1
    assert long_out == short_out + " " + "x" * CACHED_TEXT_CHARS


def test_text_caches_shared_by_patients_keep_each_patients_own_masking() -> None:
    """The caches shared across patients (a text's normalized form, its identifier-shaped strings
    masked, whether it holds a date) hold nothing about a patient: one patient's name is masked in
    that patient's text only, warm or cold, and identifier-shaped strings for everyone."""
    from medhub.privacy.deid.text import Matcher

    kim = Matcher(names=["Minjun Kim"], ids=["MRN-7788"])
    lee = Matcher(names=["Seoyeon Lee"], ids=["MRN-1122"])
    texts = ["Seen with Minjun Kim", "Seoyeon Lee, 010-1234-5678", "MRN-7788 MRN-1122 on 2024-03-01", "plain"]
    cold = {}
    for who in (kim, lee):
        for t in texts:
            clear_text_cache()
            cold[(id(who), t)] = cleaned_text(who, -2, t)
    clear_text_cache()
    for _ in range(2):
        for who in (lee, kim):
            for t in texts:
                assert cleaned_text(who, -2, t) == cold[(id(who), t)]
    assert cold[(id(kim), "Seen with Minjun Kim")] == "Seen with ***"
    assert cold[(id(lee), "Seen with Minjun Kim")] == "Seen with Minjun Kim"
    assert "5678" not in cold[(id(kim), "Seoyeon Lee, 010-1234-5678")]
    assert cold[(id(kim), "MRN-7788 MRN-1122 on 2024-03-01")] == "*** MRN-1122 on 2024-02-28"
