"""FHIR R4 resources of the synthetic hospitals, and their two export formats.

Owns the shape of each resource (Patient, Encounter, Condition, Observation,
MedicationRequest, Procedure, DiagnosticReport, ImagingStudy) and the writers: Bulk Data
NDJSON (one file per resource type, references as `Type/id`) and transaction Bundles
(one per patient, `urn:uuid:` fullUrls and references, `PUT Type/id` requests so that ids
survive). Patient.id is the hospital MRN (a documented choice: the gate can key one date
shift per patient across FHIR, DICOM and ECG with the same value).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import orjson

from medhub.synth.clinical import KCD, LOINC, SNOMED, UCUM, Disease, Lab
from medhub.synth.people import Person

KST = datetime.timezone(datetime.timedelta(hours=9))
RRN_SYSTEM = "http://www.hl7korea.or.kr/Identifier/rrn"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DCM = "http://dicom.nema.org/resources/ontology/DCM"

Resource = dict[str, Any]


def when(t: datetime.datetime | datetime.date) -> str:
    """FHIR dateTime in Korean time, e.g. 2024-03-02T09:15:03+09:00 (dates stay dates)."""
    if isinstance(t, datetime.datetime):
        return t.replace(tzinfo=KST).isoformat()
    return t.isoformat()


def ref(resource_type: str, rid: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{resource_type}/{rid}"}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def split_address(address: str) -> tuple[str, str, str]:
    """(state, city, line) of a Korean road address "시도 [시군구...] 도로명 번호"."""
    parts = address.split(" ")
    return parts[0], " ".join(parts[1:-2]), " ".join(parts[-2:])


def patient(
    person: Person, mrn: str, mrn_system: str, hospital_name: str, last_updated: datetime.datetime
) -> Resource:
    state, city, line = split_address(person.address)
    identifiers: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": concept(V2_0203, "MR", "Medical record number"),
            "system": mrn_system,
            "value": mrn,
        }
    ]
    if person.rrn:
        identifiers.append(
            {
                "use": "official",
                "type": concept(V2_0203, "NI", "National unique individual identifier"),
                "system": RRN_SYSTEM,
                "value": person.rrn,
            }
        )
    roman = f"{person.given_name_roman} {person.family_name_roman}"
    narrative = (
        f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{person.full_name} ({roman}), '
        f"{'남' if person.sex == 'M' else '여'}, {person.birth_date.isoformat()}</p></div>"
    )
    return {
        "resourceType": "Patient",
        "id": mrn,
        "meta": {"lastUpdated": when(last_updated)},
        "text": {"status": "generated", "div": narrative},
        "identifier": identifiers,
        "active": True,
        "name": [
            {
                "use": "official",
                "text": person.full_name,
                "family": person.family_name,
                "given": [person.given_name],
            },
            {
                "use": "usual",
                "text": roman,
                "family": person.family_name_roman,
                "given": [person.given_name_roman],
                "extension": [
                    {"url": "http://hl7.org/fhir/StructureDefinition/language", "valueCode": "ko-Latn"}
                ],
            },
        ],
        "telecom": [{"system": "phone", "value": person.phone, "use": "mobile"}],
        "gender": "male" if person.sex == "M" else "female",
        "birthDate": person.birth_date.isoformat(),
        "address": [
            {
                "use": "home",
                "type": "physical",
                "text": person.address,
                "line": [line],
                "city": city,
                "state": state,
                "postalCode": person.postcode,
                "country": "KR",
            }
        ],
        "managingOrganization": {"display": hospital_name},
    }


_ENCOUNTER_TYPES = {
    "checkup": ("185349003", "Encounter for check up"),
    "followup": ("390906007", "Follow-up encounter"),
    "first": ("185345009", "Encounter for symptom"),
    "emergency": ("50849002", "Emergency room admission"),
    "admission": ("32485007", "Hospital admission"),
}
_CLASSES = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}


def encounter(
    eid: str,
    mrn: str,
    cls: str,
    kind: str,
    start: datetime.datetime,
    end: datetime.datetime,
    physician: str,
    hospital_name: str,
    reasons: list[Disease],
) -> Resource:
    code, display = _ENCOUNTER_TYPES[kind]
    res: Resource = {
        "resourceType": "Encounter",
        "id": eid,
        "meta": {"lastUpdated": when(end)},
        "status": "finished",
        "class": {"system": ACT_CODE, "code": cls, "display": _CLASSES[cls]},
        "type": [concept(SNOMED, code, display)],
        "subject": ref("Patient", mrn),
        "participant": [
            {
                "type": [
                    concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ATND", "attender")
                ],
                "individual": {"display": physician},
            }
        ],
        "period": {"start": when(start), "end": when(end)},
        "serviceProvider": {"display": hospital_name},
    }
    if reasons:
        res["reasonCode"] = [concept(SNOMED, d.snomed, d.display) for d in reasons]
    return res


def condition(
    cid: str,
    mrn: str,
    eid: str,
    disease: Disease,
    onset: datetime.date,
    recorded: datetime.datetime,
    abated: datetime.datetime | None,
) -> Resource:
    res: Resource = {
        "resourceType": "Condition",
        "id": cid,
        "meta": {"lastUpdated": when(recorded)},
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "resolved" if abated else "active",
            "Resolved" if abated else "Active",
        ),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"
        ),
        "category": [
            concept(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                "encounter-diagnosis" if abated else "problem-list-item",
                "Encounter Diagnosis" if abated else "Problem List Item",
            )
        ],
        "code": {
            "coding": [
                {"system": SNOMED, "code": disease.snomed, "display": disease.display},
                {"system": KCD, "code": disease.kcd, "display": disease.kcd_display},
            ],
            "text": disease.display,
        },
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "onsetDateTime": when(onset),
        "recordedDate": when(recorded),
    }
    if abated:
        res["abatementDateTime"] = when(abated)
    return res


def _interpretation(value: float, low: float, high: float) -> dict[str, Any]:
    if value < low:
        return concept(INTERPRETATION, "L", "Low")
    if value > high:
        return concept(INTERPRETATION, "H", "High")
    return concept(INTERPRETATION, "N", "Normal")


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def lab_observation(oid: str, mrn: str, eid: str, lab: Lab, value: float, at: datetime.datetime) -> Resource:
    issued = at + datetime.timedelta(hours=2)
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"lastUpdated": when(issued)},
        "status": "final",
        "category": [concept(OBS_CATEGORY, "laboratory", "Laboratory")],
        "code": concept(LOINC, lab.loinc, lab.display),
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "effectiveDateTime": when(at),
        "issued": when(issued),
        "valueQuantity": _qty(value, lab.unit),
        "interpretation": [_interpretation(value, lab.low, lab.high)],
        "referenceRange": [{"low": _qty(lab.low, lab.unit), "high": _qty(lab.high, lab.unit)}],
    }


def vital_observation(
    oid: str, mrn: str, eid: str, code: tuple[str, str, str], value: float, at: datetime.datetime
) -> Resource:
    loinc, display, unit = code
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"lastUpdated": when(at)},
        "status": "final",
        "category": [concept(OBS_CATEGORY, "vital-signs", "Vital Signs")],
        "code": concept(LOINC, loinc, display),
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "effectiveDateTime": when(at),
        "valueQuantity": _qty(value, unit),
    }


def bp_observation(
    oid: str,
    mrn: str,
    eid: str,
    systolic: int,
    diastolic: int,
    at: datetime.datetime,
    panel: tuple[str, str],
    sys_code: tuple[str, str, str],
    dia_code: tuple[str, str, str],
) -> Resource:
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"lastUpdated": when(at)},
        "status": "final",
        "category": [concept(OBS_CATEGORY, "vital-signs", "Vital Signs")],
        "code": concept(LOINC, panel[0], panel[1]),
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "effectiveDateTime": when(at),
        "component": [
            {"code": concept(LOINC, sys_code[0], sys_code[1]), "valueQuantity": _qty(systolic, sys_code[2])},
            {"code": concept(LOINC, dia_code[0], dia_code[1]), "valueQuantity": _qty(diastolic, dia_code[2])},
        ],
    }


def medication_request(
    mid: str,
    mrn: str,
    eid: str,
    cid: str,
    coding: list[dict[str, str]],
    text: str,
    dose: str,
    authored: datetime.datetime,
    prescriber: str,
    active: bool,
) -> Resource:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "meta": {"lastUpdated": when(authored)},
        "status": "active" if active else "completed",
        "intent": "order",
        "medicationCodeableConcept": {"coding": coding, "text": text},
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "authoredOn": when(authored),
        "requester": {"display": prescriber},
        "reasonReference": [ref("Condition", cid)],
        "dosageInstruction": [{"text": dose}],
    }


def procedure(
    pid: str,
    mrn: str,
    eid: str,
    code: tuple[str, str],
    at: datetime.datetime,
    performer: str | None = None,
    reason: Disease | None = None,
) -> Resource:
    res: Resource = {
        "resourceType": "Procedure",
        "id": pid,
        "meta": {"lastUpdated": when(at)},
        "status": "completed",
        "code": concept(SNOMED, code[0], code[1]),
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "performedDateTime": when(at),
    }
    if performer:
        res["performer"] = [{"actor": {"display": performer}}]
    if reason:
        res["reasonCode"] = [concept(SNOMED, reason.snomed, reason.display)]
    return res


def diagnostic_report(
    rid: str,
    mrn: str,
    eid: str,
    category: tuple[str, str],
    code: tuple[str, str],
    at: datetime.datetime,
    results: list[str],
    conclusion: str | None = None,
    imaging_study: str | None = None,
    interpreter: str | None = None,
) -> Resource:
    issued = at + datetime.timedelta(hours=3)
    res: Resource = {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "meta": {"lastUpdated": when(issued)},
        "status": "final",
        "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", category[0], category[1])],
        "code": concept(LOINC, code[0], code[1]),
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "effectiveDateTime": when(at),
        "issued": when(issued),
    }
    if interpreter:
        res["resultsInterpreter"] = [{"display": interpreter}]
    if results:
        res["result"] = [ref("Observation", r) for r in results]
    if imaging_study:
        res["imagingStudy"] = [ref("ImagingStudy", imaging_study)]
    if conclusion:
        res["conclusion"] = conclusion
    return res


def imaging_study(
    sid: str,
    mrn: str,
    eid: str,
    *,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    sop_class: str,
    accession: str,
    modality: str,
    started: datetime.datetime,
    referrer: str,
    description: str,
    hospital_name: str,
) -> Resource:
    return {
        "resourceType": "ImagingStudy",
        "id": sid,
        "meta": {"lastUpdated": when(started)},
        "identifier": [
            {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"},
            {"type": concept(V2_0203, "ACSN", "Accession ID"), "value": accession},
        ],
        "status": "available",
        "modality": [{"system": DCM, "code": modality}],
        "subject": ref("Patient", mrn),
        "encounter": ref("Encounter", eid),
        "started": when(started),
        "referrer": {"display": referrer},
        "numberOfSeries": 1,
        "numberOfInstances": 1,
        "procedureCode": [concept(LOINC, "36554-4", "XR Chest Single view")],
        "location": {"display": hospital_name},
        "description": description,
        "series": [
            {
                "uid": series_uid,
                "number": 1,
                "modality": {"system": DCM, "code": modality},
                "description": description,
                "numberOfInstances": 1,
                "bodySite": {"system": SNOMED, "code": "51185008", "display": "Thoracic structure"},
                "started": when(started),
                "instance": [
                    {
                        "uid": sop_uid,
                        "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{sop_class}"},
                        "number": 1,
                    }
                ],
            }
        ],
    }


# --- writers ---------------------------------------------------------------------------------


class NdjsonWriter:
    """Bulk Data export: `<dir>/<ResourceType>.ndjson`, one resource per line."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, Any] = {}

    def write(self, resources: list[Resource]) -> None:
        for r in resources:
            f = self._files.get(r["resourceType"])
            if f is None:
                f = self._files[r["resourceType"]] = open(  # noqa: SIM115 - closed in close()
                    self.directory / f"{r['resourceType']}.ndjson", "wb"
                )
            f.write(orjson.dumps(r))
            f.write(b"\n")

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _to_urn(obj: Any, urns: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str) and v in urns:
                out[k] = urns[v]
            else:
                out[k] = _to_urn(v, urns)
        return out
    if isinstance(obj, list):
        return [_to_urn(v, urns) for v in obj]
    return obj


def transaction_bundle(bundle_id: str, resources: list[Resource], patient_urn: str) -> Resource:
    """One transaction Bundle: urn:uuid fullUrls, references rewritten to them, PUT requests."""
    urns: dict[str, str] = {}
    for r in resources:
        key = f"{r['resourceType']}/{r['id']}"
        urns[key] = patient_urn if r["resourceType"] == "Patient" else f"urn:uuid:{r['id']}"
    entries = []
    for r in resources:
        key = f"{r['resourceType']}/{r['id']}"
        entries.append(
            {
                "fullUrl": urns[key],
                "resource": _to_urn(r, urns),
                "request": {"method": "PUT", "url": key},
            }
        )
    return {"resourceType": "Bundle", "id": bundle_id, "type": "transaction", "entry": entries}


def write_bundle(path: Path, bundle: Resource) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
