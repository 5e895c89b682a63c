"""Synthetic hospitals: who visits which hospital, each patient's chart, and the export.

Owns `generate(out, hospitals, patients, seed)`: draws the people (medhub.synth.people),
sends ~30% of them to two or three hospitals (each extra hospital recording them with
`hospital_record` discrepancies), builds each hospital's chart of every patient
(medhub.synth.clinical drives the medicine, medhub.synth.fhir/dicom/ecg write it), and
writes the answer key under `truth/`. Layout of `out` (a contract other domains use):

    manifest.json                    {"seed", "hospitals": [{"source_id", "name", "fhir", "biosignal"}]}
    truth/identities.jsonl           one line per (hospital, patient) record, every identifying string
    truth/identifiers.txt            every distinctive identifying string written, one per line
    truth/identifiers.tsv            kind<TAB>value, every identifying string (short ones too)
    <source_id>/fhir/<Type>.ndjson   Bulk Data NDJSON, or for one hospital:
    <source_id>/fhir/bundles/<n>.json  transaction Bundles, one per patient
    <source_id>/dicom/<StudyUID>/<SOPInstanceUID>.dcm
    <source_id>/ecg/<record>.hea + .dat (WFDB), or for one hospital <source_id>/ecg/<record>.edf

Kinds in identifiers.tsv: name (full names in every written form: "김민준", "김^민준", "KIM^MINJUN",
"KIM MINJUN", "KIM_MINJUN", "Minjun Kim", DICOM composites), given_name and family_name (bare parts),
rrn, phone, address, postcode, birth_date, mrn, accession, study_uid, ecg_record (WFDB record
names carry the MRN), staff (doctors, radiographers, technicians in Hangul, DICOM and plain
forms), institution (hospital names and addresses). identifiers.txt holds the kinds a lake must
never contain (name, rrn, phone, address, mrn, accession, staff, institution, ecg_record) and
only values distinctive enough to search for as substrings (5+ characters or 2+ Hangul
syllables). Staff names are chosen so that none contains, or is contained in, a patient's name.

Every record is drawn from its own random stream keyed by (seed, hospital, person), so the
output is byte-for-byte the same for a seed and independent of the order of work.
"""

from __future__ import annotations

import datetime
import random
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medhub.synth import clinical, fhir
from medhub.synth.dicom import XrayStudy, write_xray
from medhub.synth.ecg import EcgRecording, edf_patient_name, write_edf, write_wfdb
from medhub.synth.people import Person, hospital_record, make_people

REFERENCE_DAY = datetime.date(2024, 6, 30)  # "today" for ages and the conditions a person has
FIRST_DAY = datetime.date(2023, 1, 2)
SPAN_DAYS = 730  # visits fall in 2023-2024 (follow-ups may run into 2025)

# (Korean name, English name, Korean address, English address, DICOM station prefix)
_HOSPITALS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "서울한빛대학교병원",
        "Seoul Hanbit University Hospital",
        "서울특별시 종로구 대학로 101",
        "101 Daehak-ro, Jongno-gu, Seoul",
        "HANBIT",
    ),
    (
        "부산해솔의료원",
        "Busan Haesol Medical Center",
        "부산광역시 서구 구덕로 179",
        "179 Gudeok-ro, Seo-gu, Busan",
        "HAESOL",
    ),
    (
        "대전누리봄병원",
        "Daejeon Nuribom Hospital",
        "대전광역시 중구 대종로 640",
        "640 Daejong-ro, Jung-gu, Daejeon",
        "NURIBOM",
    ),
    (
        "광주다온병원",
        "Gwangju Daon Hospital",
        "광주광역시 동구 제봉로 42",
        "42 Jebong-ro, Dong-gu, Gwangju",
        "DAON",
    ),
    (
        "인천미르병원",
        "Incheon Mir Hospital",
        "인천광역시 남동구 남동대로 774",
        "774 Namdong-daero, Namdong-gu, Incheon",
        "MIR",
    ),
    (
        "대구가온의료원",
        "Daegu Gaon Medical Center",
        "대구광역시 중구 달성로 56",
        "56 Dalseong-ro, Jung-gu, Daegu",
        "GAON",
    ),
    (
        "수원새결병원",
        "Suwon Saegyeol Hospital",
        "경기도 수원시 영통구 월드컵로 164",
        "164 World cup-ro, Yeongtong-gu, Suwon",
        "SAEGYEOL",
    ),
    (
        "제주온누리별병원",
        "Jeju Onnuribyeol Hospital",
        "제주특별자치도 제주시 아란13길 15",
        "15 Aran 13-gil, Jeju-si, Jeju",
        "ONNURI",
    ),
)

MULTI_HOSPITAL_SHARE = 0.30
ERROR_RATE = 0.15


@dataclass(frozen=True)
class Hospital:
    index: int
    source_id: str
    letter: str
    name: str
    name_en: str
    address: str
    address_en: str
    station: str
    fhir: str  # "ndjson" | "bundle"
    biosignal: str  # "wfdb" | "edf"
    modality: str  # the X-ray modality most of its rooms have: "DX" | "CR"
    staff: tuple[Person, ...]

    @property
    def mrn_system(self) -> str:
        return f"https://{self.source_id}.example.kr/fhir/mrn"

    def manifest(self) -> dict[str, str]:
        return {
            "source_id": self.source_id,
            "name": self.name,
            "fhir": self.fhir,
            "biosignal": self.biosignal,
        }


def name_forms(p: Person) -> set[str]:
    """Every way the generator may write a person's full name."""
    roman = f"{p.family_name_roman.upper()} {p.given_name_roman.upper()}"
    return {
        p.full_name,
        _hangul_pn(p),
        p.dicom_name,
        roman,
        roman.replace(" ", "_"),
        f"{p.given_name_roman} {p.family_name_roman}",
    }


def pick_staff(seed: int, index: int, patient_names: Iterable[str] = ()) -> tuple[Person, ...]:
    """Ten staff of hospital `index`: adults born 1955-1990, none of whose names contains or is
    contained in a patient's name, so that a scan for patient names never matches a colleague."""
    names = set(patient_names)
    blob = "\n".join(sorted(names))
    pool = make_people(2000, seed * 1009 + 7919 * (index + 1))
    staff: list[Person] = []
    for p in pool:
        if not 1955 <= p.birth_date.year <= 1990:
            continue
        forms = name_forms(p)
        if any(f in blob for f in forms) or any(sub in names for f in forms for sub in _substrings(f)):
            continue
        staff.append(p)
        if len(staff) == 10:
            return tuple(staff)
    raise RuntimeError(f"could not find 10 staff names for hospital {index} that differ from every patient's")


def _substrings(text: str) -> set[str]:
    return {text[i:j] for i in range(len(text)) for j in range(i + 1, len(text) + 1)}


def make_hospitals(n: int, seed: int, patient_names: Iterable[str] = ()) -> list[Hospital]:
    """`n` hospitals; the second sends FHIR as Bundles, the third (or the second of two) EDF+.
    Staff names avoid `patient_names` (see pick_staff)."""
    if not 1 <= n <= 26:
        raise ValueError(f"hospitals must be between 1 and 26, got {n}")
    out = []
    for i in range(n):
        letter = chr(ord("a") + i)
        ko, en, addr, addr_en, station = _HOSPITALS[i % len(_HOSPITALS)]
        if i >= len(_HOSPITALS):
            ko, en, station = (
                f"{ko} {i // len(_HOSPITALS) + 1}분원",
                f"{en} Branch {i // len(_HOSPITALS) + 1}",
                f"{station}{i}",
            )
        out.append(
            Hospital(
                index=i,
                source_id=f"hospital-{letter}",
                letter=letter.upper(),
                name=ko,
                name_en=en,
                address=addr,
                address_en=addr_en,
                station=station,
                fhir="bundle" if i == 1 else "ndjson",
                biosignal="edf" if n > 1 and i == min(2, n - 1) else "wfdb",
                modality="CR" if i % 2 == 1 else "DX",
                staff=pick_staff(seed, i, patient_names),
            )
        )
    return out


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _uid(rng: random.Random) -> str:
    """A DICOM UID under the 2.25 (UUID-derived) root, deterministic for the stream."""
    return f"2.25.{uuid.UUID(int=rng.getrandbits(128), version=4).int}"


def _hangul_pn(p: Person) -> str:
    return f"{p.family_name}^{p.given_name}"


@dataclass
class Record:
    """One patient as one hospital knows them, and every identifying string written for them."""

    hospital: Hospital
    person: Person  # as this hospital recorded them
    mrn: str
    number: int  # 1-based position in the hospital's patient list
    names_written: set[str] = field(default_factory=set)
    accessions: list[str] = field(default_factory=list)
    study_uids: list[str] = field(default_factory=list)
    ecg_records: list[str] = field(default_factory=list)
    physicians: set[str] = field(default_factory=set)
    institution: set[str] = field(default_factory=set)


@dataclass
class Chart:
    resources: list[fhir.Resource]
    xrays: list[XrayStudy]
    ecgs: list[EcgRecording]


def _staff_forms(p: Person) -> tuple[str, str, str]:
    """(Hangul name, DICOM PN, plain romanized) of a staff member."""
    return p.full_name, p.dicom_name, f"{p.family_name_roman.upper()} {p.given_name_roman.upper()}"


def _visit_time(day: datetime.date, rng: random.Random, emergency: bool = False) -> datetime.datetime:
    minutes = rng.randrange(0, 24 * 60) if emergency else rng.randrange(8 * 60 + 30, 17 * 60)
    return datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(
        minutes=minutes, seconds=rng.randrange(60)
    )


def build_chart(
    rec: Record, conditions: list[str], pneumonia_here: bool, home: bool, rng: random.Random
) -> Chart:
    """Every resource, radiograph and ECG of one patient at one hospital."""
    h, p, mrn = rec.hospital, rec.person, rec.mrn
    staff = h.staff
    doctors, radiologists, radiographers, technicians = (
        staff[:5],
        staff[5:7],
        staff[7:9],
        staff[9:10] or staff[:1],
    )
    doctor = doctors[rng.randrange(len(doctors))]
    resources: list[fhir.Resource] = []
    xrays: list[XrayStudy] = []
    ecgs: list[EcgRecording] = []
    chronic = [c for c in conditions if clinical.DISEASES[c].chronic]
    if not home:
        chronic = [c for c in chronic if rng.random() < 0.6]
    age_now = clinical.age_on(p.birth_date, REFERENCE_DAY)
    height, weight = clinical.body_size(p.sex, age_now, rng)
    rec.institution.update({h.name, h.name_en, h.address, h.address_en})
    doc_ko, doc_pn, doc_plain = _staff_forms(doctor)
    rec.physicians.update({doc_ko, doc_pn, doc_plain})

    # clinic visits: a first visit, then follow-ups about three months apart for chronic disease
    n_visits = 1 + (1 if chronic else 0) + (1 if len(chronic) >= 2 and rng.random() < 0.5 else 0)
    day = FIRST_DAY + datetime.timedelta(days=rng.randrange(SPAN_DAYS - 200))
    visits: list[tuple[str, datetime.datetime, str]] = []
    for k in range(n_visits):
        visits.append((_uuid(rng), _visit_time(day, rng), "first" if k == 0 else "followup"))
        day += datetime.timedelta(days=rng.randrange(70, 110))
    if not chronic:
        visits = [(visits[0][0], visits[0][1], "checkup")]

    condition_ids: dict[str, str] = {}
    want_xray = any(clinical.DISEASES[c].xray for c in chronic) or (home and rng.random() < 0.3)
    want_ecg = any(clinical.DISEASES[c].ecg for c in chronic) or (age_now >= 50 and rng.random() < 0.25)
    for k, (eid, start, kind) in enumerate(visits):
        end = start + datetime.timedelta(minutes=rng.randrange(10, 40))
        age = clinical.age_on(p.birth_date, start.date())
        resources.append(
            fhir.encounter(
                eid, mrn, "AMB", kind, start, end, doc_ko, h.name, [clinical.DISEASES[c] for c in chronic]
            )
        )
        if k == 0:
            for c in chronic:
                cid = condition_ids[c] = _uuid(rng)
                onset = start.date() - datetime.timedelta(days=rng.randrange(30, 3650))
                resources.append(
                    fhir.condition(cid, mrn, eid, clinical.DISEASES[c], max(onset, p.birth_date), start, None)
                )
            for c in chronic:
                for drug in clinical.DRUGS[c]:
                    resources.append(_med(rng, mrn, eid, condition_ids[c], drug, start, doc_ko, True))
        resources.extend(_vitals(rng, mrn, eid, chronic, age, height, weight, start))
        resources.extend(_labs(rng, mrn, eid, chronic, p.sex, age, treated=k > 0, at=start))
        if k == 0 and want_ecg:
            resources.extend(
                _ecg(
                    rec,
                    rng,
                    eid,
                    chronic,
                    start + datetime.timedelta(minutes=5),
                    technicians[0],
                    doctor,
                    ecgs,
                )
            )
        if k == 0 and want_xray:
            resources.extend(
                _xray(
                    rec,
                    rng,
                    eid,
                    chronic,
                    start + datetime.timedelta(minutes=20),
                    doctor,
                    radiologists,
                    radiographers,
                    xrays,
                )
            )

    if pneumonia_here:
        day = FIRST_DAY + datetime.timedelta(days=rng.randrange(SPAN_DAYS))
        start = _visit_time(day, rng, emergency=True)
        admit = age_now >= 65 and rng.random() < 0.6
        end = start + (
            datetime.timedelta(days=rng.randrange(5, 9))
            if admit
            else datetime.timedelta(hours=rng.randrange(3, 8))
        )
        eid = _uuid(rng)
        pneu = clinical.DISEASES["pneumonia"]
        er_doc = doctors[rng.randrange(len(doctors))]
        er_ko, er_pn, er_plain = _staff_forms(er_doc)
        rec.physicians.update({er_ko, er_pn, er_plain})
        resources.append(
            fhir.encounter(
                eid,
                mrn,
                "IMP" if admit else "EMER",
                "admission" if admit else "emergency",
                start,
                end,
                er_ko,
                h.name,
                [pneu],
            )
        )
        cid = _uuid(rng)
        resources.append(
            fhir.condition(
                cid,
                mrn,
                eid,
                pneu,
                start.date() - datetime.timedelta(days=3),
                start,
                end + datetime.timedelta(days=14),
            )
        )
        present = [*chronic, "pneumonia"]
        age = clinical.age_on(p.birth_date, start.date())
        resources.extend(_vitals(rng, mrn, eid, present, age, height, weight, start))
        resources.extend(_labs(rng, mrn, eid, present, p.sex, age, treated=False, at=start))
        resources.extend(
            _xray(
                rec,
                rng,
                eid,
                present,
                start + datetime.timedelta(minutes=40),
                er_doc,
                radiologists,
                radiographers,
                xrays,
            )
        )
        for drug in clinical.DRUGS["pneumonia"]:
            resources.append(
                _med(rng, mrn, eid, cid, drug, start + datetime.timedelta(hours=1), er_ko, False)
            )
        if admit:
            resources.append(
                fhir.procedure(
                    _uuid(rng),
                    mrn,
                    eid,
                    ("57485005", "Oxygen therapy"),
                    start + datetime.timedelta(hours=1),
                    reason=pneu,
                )
            )

    last = max(
        (datetime.datetime.fromisoformat(r["meta"]["lastUpdated"]).replace(tzinfo=None) for r in resources),
        default=datetime.datetime.combine(FIRST_DAY, datetime.time()),
    )
    patient = fhir.patient(p, mrn, h.mrn_system, h.name, last)
    rec.names_written.update(
        {p.full_name, p.given_name, f"{p.given_name_roman} {p.family_name_roman}", p.given_name_roman}
    )
    return Chart([patient, *resources], xrays, ecgs)


def _med(
    rng: random.Random,
    mrn: str,
    eid: str,
    cid: str,
    drug: clinical.Drug,
    at: datetime.datetime,
    prescriber: str,
    active: bool,
) -> fhir.Resource:
    coding = [{"system": clinical.ATC, "code": drug.atc, "display": drug.name}]
    if drug.rxnorm:
        coding.append({"system": clinical.RXNORM, "code": drug.rxnorm, "display": drug.name})
    return fhir.medication_request(
        _uuid(rng), mrn, eid, cid, coding, drug.name, drug.dose, at, prescriber, active
    )


def _vitals(
    rng: random.Random,
    mrn: str,
    eid: str,
    conditions: list[str],
    age: int,
    height: float,
    weight: float,
    at: datetime.datetime,
) -> list[fhir.Resource]:
    v = clinical.vital_values(conditions, age, height, weight, rng)
    out = [
        fhir.bp_observation(
            _uuid(rng),
            mrn,
            eid,
            v.systolic,
            v.diastolic,
            at,
            clinical.BP_PANEL,
            clinical.SYSTOLIC,
            clinical.DIASTOLIC,
        )
    ]
    for key, code in clinical.VITAL_CODES.items():
        out.append(fhir.vital_observation(_uuid(rng), mrn, eid, code, getattr(v, key), at))
    return out


def _labs(
    rng: random.Random,
    mrn: str,
    eid: str,
    conditions: list[str],
    sex: str,
    age: int,
    treated: bool,
    at: datetime.datetime,
) -> list[fhir.Resource]:
    draw = at + datetime.timedelta(minutes=rng.randrange(15, 45))
    values = clinical.lab_values(conditions, sex, age, treated, rng)
    out: list[fhir.Resource] = [
        fhir.procedure(_uuid(rng), mrn, eid, ("82078001", "Collection of blood specimen"), draw)
    ]
    for code, display, members in clinical.panels_for(conditions):
        ids = []
        for m in members:
            oid = _uuid(rng)
            ids.append(oid)
            out.append(fhir.lab_observation(oid, mrn, eid, clinical.LABS[m], values[m], draw))
        out.append(
            fhir.diagnostic_report(_uuid(rng), mrn, eid, ("LAB", "Laboratory"), (code, display), draw, ids)
        )
    return out


def _ecg(
    rec: Record,
    rng: random.Random,
    eid: str,
    conditions: list[str],
    at: datetime.datetime,
    technician: Person,
    doctor: Person,
    ecgs: list[EcgRecording],
) -> list[fhir.Resource]:
    p, h = rec.person, rec.hospital
    afib = "afib" in conditions
    hr = int(rng.gauss(98, 14)) if afib else int(rng.gauss(70, 9))
    hr = min(max(hr, 48), 150)
    n = len(rec.ecg_records) + 1
    name = (
        f"{rec.mrn}_{at:%Y%m%d}_{n}" if h.biosignal == "wfdb" else f"ECG{h.letter}{rng.randrange(10**7):07d}"
    )
    tech_ko, tech_pn, tech_plain = _staff_forms(technician)
    rec.physicians.update({tech_ko, tech_pn, tech_plain, tech_plain.replace(" ", "_")})
    rec.names_written.update({p.dicom_name, edf_patient_name(p.dicom_name), p.dicom_name.replace("^", " ")})
    rec.ecg_records.append(name)
    age = clinical.age_on(p.birth_date, at.date())
    ecgs.append(
        EcgRecording(
            record_name=name,
            when=at,
            rhythm="afib" if afib else "sinus",
            heart_rate=hr,
            patient_name=p.dicom_name,
            mrn=rec.mrn,
            age=age,
            sex=p.sex,
            birth_date=p.birth_date,
            technician=tech_plain,
            device="MAC-12 SYN",
            institution=h.name_en,
            seed=rng.getrandbits(32),
        )
    )
    doc_ko = doctor.full_name
    rhythm = "Atrial fibrillation" if afib else "Normal sinus rhythm"
    conclusion = f"{rhythm}, rate {hr} bpm."
    if rng.random() < 0.15:  # a note that names the patient, as clinicians write them
        conclusion = f"{p.full_name} 님 안정시 심전도: {conclusion}"
    return [
        fhir.procedure(
            _uuid(rng), rec.mrn, eid, ("29303009", "Electrocardiographic procedure"), at, performer=tech_ko
        ),
        fhir.diagnostic_report(
            _uuid(rng),
            rec.mrn,
            eid,
            ("EC", "Electrocardiac"),
            ("11524-6", "EKG study"),
            at,
            [],
            conclusion=conclusion,
            interpreter=doc_ko,
        ),
    ]


def _xray(
    rec: Record,
    rng: random.Random,
    eid: str,
    conditions: list[str],
    at: datetime.datetime,
    referrer: Person,
    radiologists: tuple[Person, ...],
    radiographers: tuple[Person, ...],
    xrays: list[XrayStudy],
) -> list[fhir.Resource]:
    p, h = rec.person, rec.hospital
    modality = h.modality if rng.random() < 0.85 else ("CR" if h.modality == "DX" else "DX")
    portable = "pneumonia" in conditions and rng.random() < 0.4
    view = "AP" if portable else "PA"
    study_uid, series_uid, sop_uid, frame_uid = _uid(rng), _uid(rng), _uid(rng), _uid(rng)
    accession = f"{h.letter}X{at:%y}{rng.randrange(10**6):06d}"
    radiologist = radiologists[rng.randrange(len(radiologists))] if radiologists else referrer
    radiographer = radiographers[rng.randrange(len(radiographers))] if radiographers else referrer
    utf8 = rng.random() < 0.3
    roman_pn = p.dicom_name
    if utf8:
        patient_name = f"{roman_pn}={_hangul_pn(p)}" if rng.random() < 0.6 else _hangul_pn(p)
    else:
        patient_name = roman_pn
    plain = roman_pn.replace("^", " ")
    comments = ""
    r = rng.random()
    if r < 0.2:
        comments = (
            f"Portable exam for {plain}, ward bed side" if portable else f"Pt {plain} - prior CXR compared"
        )
    description = f"CHEST {view}"
    if rng.random() < 0.1:
        description = f"CHEST {view} {plain}"
    private_value = p.rrn if (p.rrn and rng.random() < 0.5) else (p.full_name if utf8 else plain)
    findings = (
        "consolidation"
        if "pneumonia" in conditions
        else "cardiomegaly"
        if "heart_failure" in conditions
        else "hyperinflation"
        if "copd" in conditions
        else "normal"
    )
    ref_forms, rad_forms, op_forms = (
        _staff_forms(referrer),
        _staff_forms(radiologist),
        _staff_forms(radiographer),
    )
    age = clinical.age_on(p.birth_date, at.date())
    study = XrayStudy(
        modality=modality,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        frame_uid=frame_uid,
        accession=accession,
        study_id=f"{rng.randrange(10**5):05d}",
        requested_procedure_id=f"RP{rng.randrange(10**7):07d}",
        when=at,
        patient_name=patient_name,
        utf8=utf8,
        mrn=rec.mrn,
        rrn=p.rrn,
        birth_date=p.birth_date,
        sex=p.sex,
        age=age,
        patient_address=p.address,
        patient_phone=p.phone,
        institution_name=h.name if utf8 else h.name_en,
        mrn_issuer=h.name_en,
        institution_address=h.address if utf8 else h.address_en,
        department="영상의학과" if utf8 else "Radiology",
        referring=ref_forms[1],
        performing=rad_forms[1],
        operator=op_forms[1],
        station=f"{h.station}-{modality}{1 + rng.randrange(3):02d}",
        device_serial=f"SN{rng.randrange(10**8):08d}",
        view=view,
        study_description=description,
        image_comments=comments,
        private_value=private_value,
        burned_in=rng.random() < 0.05,
        findings=findings,
        pixel_seed=rng.getrandbits(32),
    )
    xrays.append(study)
    rec.names_written.update({roman_pn, plain, patient_name})
    if utf8:
        rec.names_written.update({_hangul_pn(p), p.full_name})
    rec.accessions.append(accession)
    rec.study_uids.append(study_uid)
    rec.physicians.update({*ref_forms, *rad_forms, *op_forms})
    finding_text, impression = clinical.xray_finding(conditions, rng)
    sop_class = "1.2.840.10008.5.1.4.1.1.1.1" if modality == "DX" else "1.2.840.10008.5.1.4.1.1.1"
    isid = _uuid(rng)
    return [
        fhir.imaging_study(
            isid,
            rec.mrn,
            eid,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=sop_uid,
            sop_class=sop_class,
            accession=accession,
            modality=modality,
            started=at,
            referrer=ref_forms[0],
            description=f"XR CHEST {view}",
            hospital_name=h.name,
        ),
        fhir.procedure(
            _uuid(rng), rec.mrn, eid, ("399208008", "Plain chest X-ray"), at, performer=op_forms[0]
        ),
        fhir.diagnostic_report(
            _uuid(rng),
            rec.mrn,
            eid,
            ("RAD", "Radiology"),
            ("36554-4", "XR Chest Single view"),
            at,
            [],
            conclusion=f"FINDINGS: {finding_text} IMPRESSION: {impression}",
            imaging_study=isid,
            interpreter=rad_forms[0],
        ),
    ]


# --- the whole run ------------------------------------------------------------------------------


def _assign(people: list[Person], n: int, seed: int) -> list[list[tuple[int, bool]]]:
    """For each person, the hospitals they visit: [(hospital index, is home)], home first."""
    rng = random.Random(f"{seed}-assign")
    out = []
    for _ in people:
        home = rng.randrange(n)
        visits = [(home, True)]
        if n > 1 and rng.random() < MULTI_HOSPITAL_SHARE:
            extra = 2 if n >= 3 and rng.random() < 0.35 else 1
            others = [i for i in range(n) if i != home]
            for i in rng.sample(others, extra):
                visits.append((i, False))
        out.append(visits)
    return out


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder; choose a folder to write the hospitals into")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; choose an empty folder (or overwrite=True / --force)")
        if not (out / "manifest.json").exists():
            raise FileExistsError(
                f"{out} is not empty and holds no synth manifest.json; refusing to clear it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def generate(
    out: Path,
    hospitals: int = 3,
    patients: int = 300,
    seed: int = 7,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write `hospitals` synthetic hospitals sharing `patients` people into `out`; return the manifest.

    `progress(done, total)` is called after each (hospital, patient) record.
    """
    if patients < 1:
        raise ValueError(f"patients must be at least 1, got {patients}")
    if not 1 <= hospitals <= 26:
        raise ValueError(f"hospitals must be between 1 and 26, got {hospitals}")
    out = Path(out)
    _prepare(out, overwrite)
    letters = [chr(ord("a") + i) for i in range(hospitals)]
    people = make_people(patients, seed)
    assignment = _assign(people, hospitals, seed)
    total = sum(len(v) for v in assignment)

    # per-person facts shared by every hospital: conditions, and where a pneumonia was treated
    per_person: list[tuple[list[str], int | None]] = []
    for person, visits in zip(people, assignment, strict=True):
        prng = random.Random(f"{seed}-person-{person.person_id}")
        age = clinical.age_on(person.birth_date, REFERENCE_DAY)
        conditions = clinical.draw_conditions(person.sex, age, prng)
        p_pneu = 0.18 if age >= 65 else 0.12 if age < 10 else 0.08
        pneu_at = visits[prng.randrange(len(visits))][0] if prng.random() < p_pneu else None
        per_person.append((conditions, pneu_at))

    # each hospital's records in person order, as that hospital recorded the person; each record
    # has its own random stream (also used for its chart), and an MRN unique within the hospital
    records: dict[int, list[tuple[int, bool, Person, str, random.Random]]] = {i: [] for i in range(hospitals)}
    mrngs = [random.Random(f"{seed}-mrn-hospital-{letter}") for letter in letters]
    mrns: list[set[str]] = [set() for _ in letters]
    for pi, visits in enumerate(assignment):
        for hi, home in sorted(visits):
            person = people[pi]
            rrng = random.Random(f"{seed}-record-hospital-{letters[hi]}-{person.person_id}")
            recorded = person if home else hospital_record(person, rrng, ERROR_RATE)
            mrn = f"{letters[hi].upper()}{mrngs[hi].randrange(10**6, 10**7):07d}"
            while mrn in mrns[hi]:
                mrn = f"{letters[hi].upper()}{mrngs[hi].randrange(10**6, 10**7):07d}"
            mrns[hi].add(mrn)
            records[hi].append((pi, home, recorded, mrn, rrng))
    patient_names = {n for recs in records.values() for r in recs for n in name_forms(r[2])}
    hs = make_hospitals(hospitals, seed, patient_names)

    truth_lines: list[bytes] = []
    identifiers: set[tuple[str, str]] = set()
    done = 0
    for h in hs:
        fhir_dir = out / h.source_id / "fhir"
        ndjson = fhir.NdjsonWriter(fhir_dir) if h.fhir == "ndjson" else None
        for number, (pi, home, recorded, mrn, rrng) in enumerate(records[h.index], start=1):
            rec = Record(hospital=h, person=recorded, mrn=mrn, number=number)
            conditions, pneu_at = per_person[pi]
            chart = build_chart(rec, conditions, pneu_at == h.index, home, rrng)
            if ndjson is not None:
                ndjson.write(chart.resources)
            else:
                bundle = fhir.transaction_bundle(
                    f"{h.source_id}-{number:05d}", chart.resources, f"urn:uuid:{_uuid(rrng)}"
                )
                fhir.write_bundle(fhir_dir / "bundles" / f"{number:05d}.json", bundle)
            for x in chart.xrays:
                write_xray(out / h.source_id / "dicom" / x.study_uid / f"{x.sop_uid}.dcm", x)
            for e in chart.ecgs:
                if h.biosignal == "wfdb":
                    write_wfdb(out / h.source_id / "ecg", e)
                else:
                    write_edf(out / h.source_id / "ecg" / f"{e.record_name}.edf", e)
            line, kinds = _truth(rec)
            truth_lines.append(line)
            identifiers.update(kinds)
            done += 1
            if progress is not None:
                progress(done, total)
        if ndjson is not None:
            ndjson.close()

    manifest = {"seed": seed, "patients": patients, "hospitals": [h.manifest() for h in hs]}
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    (truth / "identities.jsonl").write_bytes(b"".join(truth_lines))
    rows = sorted(identifiers)
    (truth / "identifiers.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in rows), encoding="utf-8")
    distinctive = sorted({v for k, v in rows if k in SCAN_KINDS and is_distinctive(v)})
    (truth / "identifiers.txt").write_text("".join(f"{v}\n" for v in distinctive), encoding="utf-8")
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


# kinds listed in identifiers.txt (direct identifiers); quasi-identifiers (birth date, postcode,
# sex) and UIDs are in identities.jsonl and identifiers.tsv only
SCAN_KINDS = frozenset(
    {"name", "rrn", "phone", "address", "mrn", "accession", "staff", "institution", "ecg_record"}
)


def is_distinctive(value: str) -> bool:
    """Long enough to search for as a substring without matching by chance: 5+ characters,
    or 2+ Hangul syllables (6+ bytes in UTF-8)."""
    hangul = sum(1 for ch in value if "가" <= ch <= "힣")
    return len(value) >= 5 or hangul >= 2


def _truth(rec: Record) -> tuple[bytes, set[tuple[str, str]]]:
    p = rec.person
    line = {
        "source_id": rec.hospital.source_id,
        "mrn": rec.mrn,
        "patient_id": rec.mrn,
        "person_id": p.person_id,
        "family_name": p.family_name,
        "given_name": p.given_name,
        "family_name_roman": p.family_name_roman,
        "given_name_roman": p.given_name_roman,
        "names_written": sorted(rec.names_written),
        "sex": p.sex,
        "birth_date": p.birth_date.isoformat(),
        "rrn": p.rrn,
        "phone": p.phone,
        "address": p.address,
        "postcode": p.postcode,
        "accession_numbers": rec.accessions,
        "study_uids": rec.study_uids,
        "ecg_records": rec.ecg_records,
        "staff_names": sorted(rec.physicians),
        "institution": sorted(rec.institution),
    }
    given = {p.given_name, p.given_name_roman}
    kinds: set[tuple[str, str]] = {("given_name" if n in given else "name", n) for n in rec.names_written}
    kinds.update(
        {
            ("family_name", p.family_name),
            ("family_name", p.family_name_roman),
            ("mrn", rec.mrn),
            ("phone", p.phone),
            ("address", p.address),
            ("postcode", p.postcode),
            ("birth_date", p.birth_date.isoformat()),
            ("birth_date", f"{p.birth_date:%Y%m%d}"),
        }
    )
    if p.rrn:
        kinds.add(("rrn", p.rrn))
    kinds.update(("accession", a) for a in rec.accessions)
    kinds.update(("study_uid", u) for u in rec.study_uids)
    kinds.update(("ecg_record", r) for r in rec.ecg_records)
    kinds.update(("staff", s) for s in rec.physicians)
    kinds.update(("institution", s) for s in rec.institution)
    return orjson.dumps(line) + b"\n", kinds


def read_identifiers(out: Path, kinds: Iterable[str] | None = None) -> set[str]:
    """The identifying strings a synth run wrote: `truth/identifiers.txt`, or with `kinds`
    (e.g. {"name", "rrn"}) those of `truth/identifiers.tsv` of these kinds."""
    out = Path(out)
    if kinds is None:
        path = out / "truth" / "identifiers.txt"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: is {out} the output of `medhub synth`?")
        return {line for line in path.read_text(encoding="utf-8").splitlines() if line}
    wanted = set(kinds)
    path = out / "truth" / "identifiers.tsv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: is {out} the output of `medhub synth`?")
    result = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, _, value = line.partition("\t")
        if kind in wanted and value:
            result.add(value)
    return result
