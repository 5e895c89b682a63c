"""FHIR de-identification: people's identity gone, addresses generalized, dates shifted keeping
precision and zone, ages over 89 grouped, references and DICOM UIDs rewritten consistently."""

from __future__ import annotations

import json
from datetime import date, datetime

from medhub.config import Settings
from medhub.ingest.records import FhirItem
from medhub.privacy.deid.common import Policy, source_secrets
from medhub.privacy.deid.fhir import PatientIndex, deid_resource
from medhub.privacy.gate import make_gate

MRN = "MRN0042"
IDENTIFIERS = [
    "홍길동",
    "길동",
    "HONG",
    "Gildong",
    "900101-1234567",
    "9001011234567",
    "010-1234-5678",
    "gildong@example.kr",
    "세종대로",
    "03154",
    "Kim Nurse",
    MRN,
]


def patient(birth: str = "1960-05-17") -> dict:
    return {
        "resourceType": "Patient",
        "id": MRN,
        "meta": {"lastUpdated": "2024-03-02T09:00:00.123+09:00"},
        "text": {"status": "generated", "div": "<div>홍길동 900101-1234567</div>"},
        "identifier": [
            {"system": "urn:kr:rrn", "value": "900101-1234567", "type": {"text": "RRN of 홍길동"}},
            {"system": "urn:hosp:mrn", "value": MRN, "assigner": {"display": "Seoul Hospital"}},
        ],
        "name": [
            {"family": "홍", "given": ["길동"], "text": "홍길동"},
            {"family": "HONG", "given": ["Gildong"]},
        ],
        "telecom": [
            {"system": "phone", "value": "010-1234-5678"},
            {"system": "email", "value": "gildong@example.kr"},
        ],
        "address": [
            {
                "text": "서울특별시 종로구 세종대로 1",
                "line": ["세종대로 1"],
                "city": "종로구",
                "state": "서울특별시",
                "postalCode": "03154",
                "country": "KR",
            }
        ],
        "photo": [{"contentType": "image/jpeg", "data": "AAAA"}],
        "contact": [{"name": {"text": "Kim Nurse"}}],
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": "Kim",
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Busan"},
            },
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "M"},
        ],
        "gender": "male",
        "birthDate": birth,
    }


def observation(when: str = "2024-03-01T10:00:00+09:00") -> dict:
    return {
        "resourceType": "Observation",
        "id": "obs1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{MRN}", "display": "홍길동"},
        "effectiveDateTime": when,
        "issued": "2024-03-01T01:05:00Z",
        "valueQuantity": {"value": 72, "unit": "/min"},
        "note": [{"text": "홍길동 said to call 010-1234-5678", "authorString": "Kim Nurse"}],
        "performer": [{"reference": "Practitioner/p1", "display": "Dr. Lee"}],
        "valueString": None,
    }


def run(settings: Settings, *resources: dict, source: str = "hosp-a") -> list[dict]:
    gate = make_gate(settings, source)
    return [gate(FhirItem("x.ndjson", r)).resource for r in resources]


def test_no_identifier_survives(settings: Settings) -> None:
    obs = observation()
    obs.pop("valueString")
    out = run(settings, patient(), obs)
    text = json.dumps(out, ensure_ascii=False)
    for ident in IDENTIFIERS:
        assert ident not in text, ident
    p, o = out
    assert (
        "text" not in p and "name" not in p and "telecom" not in p and "photo" not in p and "contact" not in p
    )
    assert "note" not in o
    assert "display" not in o["subject"] and "display" not in o["performer"][0]
    assert {e["url"].rsplit("-", 1)[-1] for e in p["extension"]} == {"birthsex"}


def test_address_generalized(settings: Settings) -> None:
    p = run(settings, patient())[0]
    assert p["address"] == [{"country": "KR", "state": "서울특별시", "postalCode": "031"}]
    wide = deid_resource(patient(), source_secrets(settings, "a"), Policy(address_level=2, postcode_digits=0))
    assert wide["address"] == [{"country": "KR", "state": "서울특별시", "city": "종로구"}]
    text_only = patient()
    text_only["address"] = [{"text": "부산광역시 해운대구 우동 1"}]
    assert run(settings, text_only)[0]["address"] == [{"state": "부산광역시"}]


def test_references_and_identifiers_pseudonymized(settings: Settings) -> None:
    p, o = run(settings, patient(), observation())
    secrets = source_secrets(settings, "hosp-a")
    assert p["id"] == secrets.patient(MRN)
    assert o["subject"]["reference"] == f"Patient/{p['id']}"
    assert o["performer"][0]["reference"] == "Practitioner/p1"
    assert [i["system"] for i in p["identifier"]] == ["urn:kr:rrn", "urn:hosp:mrn"]
    assert "text" not in p["identifier"][0]["type"] and "assigner" not in p["identifier"][1]
    other = run(settings, patient(), source="hosp-b")[0]
    assert other["id"] != p["id"] and other["identifier"][0]["value"] != p["identifier"][0]["value"]
    bundle_like = {
        "resourceType": "Encounter",
        "id": "e1",
        "subject": {"reference": f"http://h/fhir/Patient/{MRN}"},
    }
    assert run(settings, bundle_like)[0]["subject"]["reference"] == f"http://h/fhir/Patient/{p['id']}"


def test_dates_shifted_keep_precision_and_zone(settings: Settings) -> None:
    shift = source_secrets(settings, "hosp-a").shift_days(MRN)
    p, o = run(settings, patient(), observation())
    assert shift < 0
    born = date.fromisoformat(p["birthDate"])
    assert (date(1960, 5, 17) - born).days == -shift
    eff = datetime.fromisoformat(o["effectiveDateTime"])
    assert o["effectiveDateTime"].endswith("T10:00:00+09:00")
    assert (datetime.fromisoformat("2024-03-01T10:00:00+09:00") - eff).days == -shift
    assert o["issued"].endswith("T01:05:00Z")
    assert p["meta"]["lastUpdated"].endswith("T09:00:00.123+09:00")
    partial = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": f"Patient/{MRN}"},
        "onsetDateTime": "2019",
        "recordedDate": "2019-07",
        "abatementPeriod": {"start": "2020-01-02"},
    }
    c = run(settings, partial)[0]
    assert (
        len(c["onsetDateTime"]) == 4
        and len(c["recordedDate"]) == 7
        and len(c["abatementPeriod"]["start"]) == 10
    )
    coded = {
        "resourceType": "MedicationRequest",
        "id": "m",
        "subject": {"reference": f"Patient/{MRN}"},
        "medicationCodeableConcept": {"coding": [{"code": "8640", "system": "rxnorm"}]},
    }
    assert run(settings, coded)[0]["medicationCodeableConcept"]["coding"][0]["code"] == "8640"  # not a date


def test_intervals_between_a_patients_resources_survive(settings: Settings) -> None:
    a = observation("2024-03-01T10:00:00+09:00")
    b = observation("2024-06-15T08:30:00+09:00")
    oa, ob = run(settings, a, b)
    da, db = datetime.fromisoformat(oa["effectiveDateTime"]), datetime.fromisoformat(ob["effectiveDateTime"])
    assert db - da == datetime.fromisoformat(b["effectiveDateTime"]) - datetime.fromisoformat(
        a["effectiveDateTime"]
    )


def test_over_89_birth_date_grouped(settings: Settings) -> None:
    old = deid_resource(
        patient("1920-02-03"), source_secrets(settings, "a"), Policy(), today=date(2024, 6, 1)
    )
    assert len(old["birthDate"]) == 4
    assert (
        date(2024, 6, 1).year + source_secrets(settings, "a").shift_days(MRN) // 366 - int(old["birthDate"])
        >= 89
    )
    young = deid_resource(
        patient("1960-02-03"), source_secrets(settings, "a"), Policy(), today=date(2024, 6, 1)
    )
    assert len(young["birthDate"]) == 10
    dead = patient("1930-01-01")
    dead["deceasedDateTime"] = "2010-01-01"  # died at 80: not grouped
    assert (
        len(deid_resource(dead, source_secrets(settings, "a"), Policy(), today=date(2024, 6, 1))["birthDate"])
        == 10
    )


def test_notes_cleaned_when_kept_and_free_text_checked(settings: Settings) -> None:
    secrets = source_secrets(settings, "a")
    index = PatientIndex()
    deid_resource(patient(), secrets, Policy(), index)
    obs = observation()
    obs["valueString"] = "홍길동 reports pain since 2024-02-28"
    out = deid_resource(obs, secrets, Policy(fhir_notes="clean"), index)
    assert out["note"] == [{"text": "*** said to call ***"}]
    assert "홍길동" not in out["valueString"] and "2024-02-28" not in out["valueString"]


def test_imaging_study_joins_dicom(settings: Settings) -> None:
    secrets = source_secrets(settings, "hosp-a")
    study = {
        "resourceType": "ImagingStudy",
        "id": "is1",
        "status": "available",
        "subject": {"reference": f"Patient/{MRN}"},
        "identifier": [
            {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4.5"},
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]
                },
                "value": "ACC77881",
            },
        ],
        "series": [
            {
                "uid": "1.2.3.4.5.6",
                "instance": [
                    {"uid": "1.2.3.4.5.6.7", "sopClass": {"code": "urn:oid:1.2.840.10008.5.1.4.1.1.1"}}
                ],
            }
        ],
    }
    out = run(settings, study)[0]
    assert out["identifier"][0]["value"] == "urn:oid:" + secrets.uid("1.2.3.4.5")
    assert out["identifier"][1]["value"] == secrets.pseudonym("ACC77881", "accession", 16).upper()
    assert out["series"][0]["uid"] == secrets.uid("1.2.3.4.5.6")
    assert out["series"][0]["instance"][0]["uid"] == secrets.uid("1.2.3.4.5.6.7")
    assert out["series"][0]["instance"][0]["sopClass"]["code"] == "urn:oid:1.2.840.10008.5.1.4.1.1.1"


def test_practitioner_and_related_person_stripped(settings: Settings) -> None:
    rp = {
        "resourceType": "RelatedPerson",
        "id": "r",
        "patient": {"reference": f"Patient/{MRN}"},
        "name": [{"text": "홍판서"}],
        "telecom": [{"value": "010-9999-8888"}],
        "address": [{"text": "x"}],
    }
    out = run(settings, rp)[0]
    assert "name" not in out and "telecom" not in out and "address" not in out
    assert out["patient"]["reference"] != f"Patient/{MRN}"


def test_hostile_shapes_do_not_crash_or_leak(settings: Settings) -> None:
    weird = {
        "resourceType": "Patient",
        "id": MRN,
        "identifier": "900101-1234567",
        "name": "홍길동",
        "address": ["서울특별시 종로구"],
        "birthDate": "garbage",
        "note": "홍길동",
        "extension": [{"url": "x", "valueHumanName": {"text": "홍길동"}}, "junk"],
        "telecom": None,
    }
    out = run(settings, weird)[0]
    text = json.dumps(out, ensure_ascii=False)
    assert "홍길동" not in text and "900101-1234567" not in text and "birthDate" not in out
    obs = {"resourceType": "Observation", "id": "o", "subject": "Patient/" + MRN, "effectiveDateTime": 2024}
    assert MRN not in json.dumps(run(settings, obs)[0])


def test_provenance_dates_follow_their_patient(settings: Settings) -> None:
    shift = source_secrets(settings, "hosp-a").shift_days(MRN)
    prov = {
        "resourceType": "Provenance",
        "id": "pv",
        "target": [{"reference": "Encounter/e1"}, {"reference": f"Patient/{MRN}"}],
        "recorded": "2024-03-01T10:00:00+09:00",
    }
    out = run(settings, prov)[0]
    assert (
        datetime.fromisoformat("2024-03-01T10:00:00+09:00") - datetime.fromisoformat(out["recorded"])
    ).days == -shift
    org = {"resourceType": "Organization", "id": "org", "meta": {"lastUpdated": "2024-03-01T00:00:00Z"}}
    assert run(settings, org)[0]["meta"]["lastUpdated"] == "2024-03-01T00:00:00Z"  # about no patient


def test_contained_people_stripped(settings: Settings) -> None:
    res = {
        "resourceType": "Observation",
        "id": "o",
        "subject": {"reference": "#p1"},
        "contained": [
            {
                "resourceType": "Patient",
                "id": "p1",
                "name": [{"text": "홍길동"}],
                "birthDate": "1930-01-01",
                "telecom": [{"value": "010-1234-5678"}],
                "text": {"div": "<div>홍길동</div>"},
            },
        ],
    }
    text = json.dumps(run(settings, res)[0], ensure_ascii=False)
    assert "홍길동" not in text and "010-1234-5678" not in text and "1930" not in text


def test_full_dates_under_any_key_are_shifted(settings: Settings) -> None:
    shift = source_secrets(settings, "hosp-a").shift_days(MRN)
    ms = {
        "resourceType": "MedicationStatement",
        "id": "ms",
        "subject": {"reference": f"Patient/{MRN}"},
        "dateAsserted": "2024-03-01",
        "extension": [{"url": "x", "valueString": "n/a"}],
    }
    out = run(settings, ms)[0]
    assert (date(2024, 3, 1) - date.fromisoformat(out["dateAsserted"])).days == -shift
