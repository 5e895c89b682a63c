"""The clinical catalog of the synthetic hospitals and the values it drives.

Owns what is medically plausible: which diseases a person has (by age and sex, the
common chronic ones of a Korean adult clinic plus pneumonia), how each disease shows in
labs and vital signs (diabetes -> high HbA1c and glucose; CKD -> creatinine up, eGFR
down; pneumonia -> CRP and WBC up, fever, low SpO2; ...), which drug treats it, and
which imaging or ECG it calls for. Pure functions over `random.Random`; no I/O.

Code systems: SNOMED CT and KCD-8 (the Korean ICD-10 adaptation) for conditions, LOINC
with UCUM units for observations, WHO ATC for drugs.
"""

from __future__ import annotations

import datetime
import math
import random
from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
KCD = "http://www.hl7korea.or.kr/CodeSystem/kcd-8"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True)
class Disease:
    key: str
    snomed: str
    display: str
    kcd: str
    kcd_display: str
    chronic: bool
    xray: bool  # a chest X-ray is part of its work-up
    ecg: bool  # an ECG is part of its work-up


DISEASES: dict[str, Disease] = {
    d.key: d
    for d in (
        Disease(
            "diabetes",
            "44054006",
            "Diabetes mellitus type 2",
            "E11.9",
            "2형 당뇨병, 합병증을 동반하지 않은",
            True,
            False,
            False,
        ),
        Disease(
            "hypertension",
            "59621000",
            "Essential hypertension",
            "I10",
            "본태성(원발성) 고혈압",
            True,
            False,
            True,
        ),
        Disease(
            "hyperlipidemia",
            "55822004",
            "Hyperlipidemia",
            "E78.5",
            "상세불명의 고지질혈증",
            True,
            False,
            False,
        ),
        Disease(
            "ckd",
            "433144002",
            "Chronic kidney disease stage 3",
            "N18.3",
            "만성 신장병(3기)",
            True,
            False,
            False,
        ),
        Disease(
            "afib",
            "49436004",
            "Atrial fibrillation",
            "I48.9",
            "상세불명의 심방세동 및 심방조동",
            True,
            False,
            True,
        ),
        Disease("heart_failure", "84114007", "Heart failure", "I50.9", "상세불명의 심부전", True, True, True),
        Disease(
            "copd",
            "13645005",
            "Chronic obstructive lung disease",
            "J44.9",
            "상세불명의 만성 폐쇄성 폐질환",
            True,
            True,
            False,
        ),
        Disease("asthma", "195967001", "Asthma", "J45.9", "상세불명의 천식", True, False, False),
        Disease(
            "anemia",
            "87522002",
            "Iron deficiency anemia",
            "D50.9",
            "상세불명의 철결핍빈혈",
            True,
            False,
            False,
        ),
        Disease(
            "hypothyroidism",
            "40930008",
            "Hypothyroidism",
            "E03.9",
            "상세불명의 갑상선기능저하증",
            True,
            False,
            False,
        ),
        Disease("pneumonia", "233604007", "Pneumonia", "J18.9", "상세불명의 폐렴", False, True, False),
    )
}


@dataclass(frozen=True)
class Drug:
    atc: str
    name: str
    dose: str
    rxnorm: str | None = None


DRUGS: dict[str, tuple[Drug, ...]] = {
    "diabetes": (Drug("A10BA02", "metformin", "500 mg orally twice daily", "861007"),),
    "hypertension": (Drug("C08CA01", "amlodipine", "5 mg orally once daily", "197361"),),
    "hyperlipidemia": (Drug("C10AA05", "atorvastatin", "20 mg orally once daily", "617310"),),
    "ckd": (Drug("C09CA01", "losartan", "50 mg orally once daily"),),
    "afib": (Drug("B01AF02", "apixaban", "5 mg orally twice daily"),),
    "heart_failure": (Drug("C03CA01", "furosemide", "40 mg orally once daily"),),
    "copd": (Drug("R03BB04", "tiotropium", "18 mcg inhaled once daily"),),
    "asthma": (Drug("R03AK07", "budesonide and formoterol", "160/4.5 mcg inhaled twice daily"),),
    "anemia": (Drug("B03AA07", "ferrous sulfate", "325 mg orally once daily"),),
    "hypothyroidism": (Drug("H03AA01", "levothyroxine", "50 mcg orally once daily"),),
    "pneumonia": (
        Drug("J01CR02", "amoxicillin and clavulanic acid", "875/125 mg orally twice daily for 7 days"),
    ),
}


@dataclass(frozen=True)
class Lab:
    loinc: str
    display: str
    unit: str  # UCUM
    low: float
    high: float
    decimals: int


LABS: dict[str, Lab] = {
    "hba1c": Lab("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
    "glucose": Lab("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
    "creatinine": Lab("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.2, 2),
    "egfr": Lab(
        "98979-8",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, "
        "Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)",
        "mL/min/{1.73_m2}",
        60,
        200,
        0,
    ),
    "bun": Lab("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
    "potassium": Lab("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
    "sodium": Lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 0),
    "crp": Lab("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0, 5, 1),
    "wbc": Lab("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 10.0, 1),
    "hemoglobin": Lab("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 16.5, 1),
    "platelets": Lab("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0),
    "cholesterol": Lab("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 0, 200, 0),
    "ldl": Lab(
        "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL", 0, 130, 0
    ),
    "hdl": Lab("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, 100, 0),
    "triglycerides": Lab("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 0, 150, 0),
    "ntprobnp": Lab(
        "33762-6",
        "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma",
        "pg/mL",
        0,
        125,
        0,
    ),
    "tsh": Lab("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.4, 4.0, 2),
    "alt": Lab(
        "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 0, 40, 0
    ),
}

# lab panels: (LOINC code, display, members); the DiagnosticReport of a visit groups results by panel
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("58410-2", "CBC panel - Blood by Automated count", ("wbc", "hemoglobin", "platelets")),
    (
        "51990-0",
        "Basic metabolic panel - Blood",
        ("glucose", "creatinine", "egfr", "bun", "sodium", "potassium"),
    ),
    (
        "57698-3",
        "Lipid panel with direct LDL - Serum or Plasma",
        ("cholesterol", "ldl", "hdl", "triglycerides"),
    ),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", ("hba1c",)),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", ("crp",)),
    ("33762-6", "NT-proBNP [Mass/volume] in Serum or Plasma", ("ntprobnp",)),
    ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", ("tsh",)),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", ("alt",)),
)

# which panels a visit orders, by the conditions the visit is about (CBC and BMP always)
_PANEL_FOR = {
    "diabetes": ("4548-4", "57698-3"),
    "hyperlipidemia": ("57698-3", "1742-6"),
    "ckd": (),
    "heart_failure": ("33762-6",),
    "pneumonia": ("1988-5",),
    "hypothyroidism": ("3016-3",),
    "hypertension": ("57698-3",),
}


def panels_for(conditions: list[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    wanted = {"58410-2", "51990-0"}
    for c in conditions:
        wanted.update(_PANEL_FOR.get(c, ()))
    return [p for p in PANELS if p[0] in wanted]


def age_on(birth: datetime.date, day: datetime.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def draw_conditions(sex: str, age: int, rng: random.Random) -> list[str]:
    """Chronic diseases by age band and sex (roughly Korean adult prevalence), comorbidity-aware."""
    band = 0 if age < 40 else 1 if age < 65 else 2

    def p(young: float, mid: float, old: float) -> bool:
        return rng.random() < (young, mid, old)[band]

    out: list[str] = []
    if p(0.02, 0.14, 0.28):
        out.append("diabetes")
    if p(0.04, 0.28, 0.58):
        out.append("hypertension")
    if p(0.05, 0.22, 0.40):
        out.append("hyperlipidemia")
    ckd_risk = 1.0 + 1.5 * ("diabetes" in out) + 1.0 * ("hypertension" in out)
    if rng.random() < (0.005, 0.03, 0.08)[band] * ckd_risk:
        out.append("ckd")
    if p(0.0, 0.015, 0.07):
        out.append("afib")
    if rng.random() < (0.0, 0.01, 0.05)[band] * (1.8 if "afib" in out else 1.0):
        out.append("heart_failure")
    if rng.random() < (0.0, 0.02, 0.08)[band] * (1.6 if sex == "M" else 0.6):
        out.append("copd")
    if rng.random() < 0.04 and "copd" not in out:
        out.append("asthma")
    if rng.random() < (0.06 if sex == "F" and age < 55 else 0.02):
        out.append("anemia")
    if rng.random() < (0.04 if sex == "F" else 0.01):
        out.append("hypothyroidism")
    return out


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def egfr_ckd_epi_2021(creatinine: float, age: int, sex: str) -> float:
    """eGFR by the CKD-EPI 2021 (race-free) creatinine equation, mL/min/1.73 m2."""
    kappa, alpha = (0.7, -0.241) if sex == "F" else (0.9, -0.302)
    ratio = creatinine / kappa
    value = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.2 * 0.9938 ** max(age, 18)
    return value * (1.012 if sex == "F" else 1.0)


def lab_values(
    conditions: list[str], sex: str, age: int, treated: bool, rng: random.Random
) -> dict[str, float]:
    """One draw of every lab, driven by the conditions (treatment brings values partway back)."""
    c = set(conditions)
    g = rng.gauss
    v: dict[str, float] = {}
    if "diabetes" in c:
        v["hba1c"] = _clip(g(8.1, 0.9) - (0.6 if treated else 0.0), 6.5, 12.5)
        v["glucose"] = _clip(g(120 + 16 * (v["hba1c"] - 6), 15), 95, 380)
    else:
        v["hba1c"] = _clip(g(5.4, 0.25), 4.5, 6.2)
        v["glucose"] = _clip(g(93, 9), 70, 125)
    base_cr = 0.95 if sex == "M" else 0.74
    if "ckd" in c:
        # creatinine that puts eGFR in stage 3 (30-59)
        target = _clip(g(44, 8), 31, 58)
        cr = base_cr
        for _ in range(40):
            if egfr_ckd_epi_2021(cr, age, sex) <= target:
                break
            cr += 0.05
        v["creatinine"] = cr
    else:
        v["creatinine"] = _clip(g(base_cr, 0.12), 0.5, 1.3)
    v["egfr"] = egfr_ckd_epi_2021(v["creatinine"], age, sex)
    v["bun"] = _clip(g(14 + (16 if "ckd" in c else 0), 3.5), 6, 60)
    v["potassium"] = _clip(g(4.2 + (0.5 if "ckd" in c else 0), 0.3), 3.2, 6.2)
    v["sodium"] = _clip(g(140 - (3 if "heart_failure" in c else 0), 2), 128, 148)
    if "pneumonia" in c:
        v["crp"] = _clip(math.exp(g(4.3, 0.5)), 20, 350)
        v["wbc"] = _clip(g(14.5, 3.0), 10.5, 28)
    else:
        v["crp"] = _clip(math.exp(g(0.2, 0.7)), 0.1, 9)
        v["wbc"] = _clip(g(6.6, 1.4), 3.8, 10.5)
    hb = g(14.8, 0.9) if sex == "M" else g(13.1, 0.8)
    if "anemia" in c:
        hb = g(9.6, 0.9) + (0.8 if treated else 0.0)
    if "ckd" in c:
        hb -= 1.0
    v["hemoglobin"] = _clip(hb, 6.5, 18.5)
    v["platelets"] = _clip(g(250, 55), 120, 450)
    ldl = g(150, 22) - (45 if treated else 0) if "hyperlipidemia" in c else g(105, 22)
    v["ldl"] = _clip(ldl, 45, 240)
    v["hdl"] = _clip(g(46 if sex == "M" else 56, 9), 25, 95)
    v["triglycerides"] = _clip(math.exp(g(4.9 + (0.3 if "diabetes" in c else 0), 0.35)), 40, 600)
    v["cholesterol"] = v["ldl"] + v["hdl"] + v["triglycerides"] / 5
    v["ntprobnp"] = _clip(math.exp(g(7.6, 0.7)) if "heart_failure" in c else math.exp(g(3.9, 0.6)), 5, 30000)
    v["tsh"] = _clip(g(8.5, 2.5) - (4 if treated else 0) if "hypothyroidism" in c else g(2.0, 0.8), 0.3, 25)
    v["alt"] = _clip(g(24, 8), 7, 90)
    return {k: round(x, LABS[k].decimals) for k, x in v.items()}


@dataclass(frozen=True)
class Vitals:
    systolic: int
    diastolic: int
    heart_rate: int
    respiratory_rate: int
    temperature: float
    spo2: int
    height_cm: float
    weight_kg: float

    @property
    def bmi(self) -> float:
        return round(self.weight_kg / (self.height_cm / 100) ** 2, 1)


def body_size(sex: str, age: int, rng: random.Random) -> tuple[float, float]:
    """Height (cm) and weight (kg) of a Korean of this sex and age (children scaled down)."""
    adult_h = rng.gauss(172, 6) if sex == "M" else rng.gauss(159, 5.5)
    if age < 18:
        frac = _clip(0.45 + 0.032 * age, 0.45, 1.0)
        h = adult_h * frac
    else:
        h = adult_h - max(0, age - 60) * 0.12
    bmi = _clip(rng.gauss(23.8 if sex == "M" else 22.6, 3.2), 16, 38) if age >= 18 else rng.gauss(17.5, 2)
    return round(h, 1), round(bmi * (h / 100) ** 2, 1)


def vital_values(conditions: list[str], age: int, height: float, weight: float, rng: random.Random) -> Vitals:
    c = set(conditions)
    g = rng.gauss
    sys_bp = g(146, 12) if "hypertension" in c else g(116 + max(0, age - 40) * 0.3, 9)
    dia = sys_bp * 0.62 + g(0, 5)
    hr = g(96, 16) if "afib" in c else g(74, 9) + (18 if "pneumonia" in c else 0)
    rr = g(23, 3) if "pneumonia" in c else g(16, 1.5)
    temp = g(38.4, 0.5) if "pneumonia" in c else g(36.6, 0.25)
    spo2 = g(92, 2) if "pneumonia" in c else g(94, 1.5) if "copd" in c else g(98, 0.8)
    return Vitals(
        systolic=int(_clip(sys_bp, 85, 210)),
        diastolic=int(_clip(dia, 50, 125)),
        heart_rate=int(_clip(hr, 45, 160)),
        respiratory_rate=int(_clip(rr, 10, 36)),
        temperature=round(_clip(temp, 35.5, 40.5), 1),
        spo2=int(_clip(spo2, 82, 100)),
        height_cm=height,
        weight_kg=round(weight + g(0, 0.8), 1),
    )


# vital signs as FHIR Observations: key, LOINC, display, UCUM unit
VITAL_CODES: dict[str, tuple[str, str, str]] = {
    "heart_rate": ("8867-4", "Heart rate", "/min"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
    "temperature": ("8310-5", "Body temperature", "Cel"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "height_cm": ("8302-2", "Body height", "cm"),
    "weight_kg": ("29463-7", "Body weight", "kg"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure", "mm[Hg]")
DIASTOLIC = ("8462-4", "Diastolic blood pressure", "mm[Hg]")


def xray_finding(conditions: list[str], rng: random.Random) -> tuple[str, str]:
    """(findings, impression) of a chest radiograph for these conditions."""
    c = set(conditions)
    if "pneumonia" in c:
        side = rng.choice(("right lower", "left lower", "right middle"))
        return (
            f"Patchy consolidation in the {side} lobe with air bronchograms. No pleural effusion.",
            f"Findings consistent with {side} lobe pneumonia.",
        )
    if "heart_failure" in c:
        return (
            "Cardiomegaly (CTR 0.58) with pulmonary vascular congestion and small bilateral effusions.",
            "Cardiomegaly with signs of congestive heart failure.",
        )
    if "copd" in c:
        return (
            "Hyperinflated lungs with flattened diaphragms. No focal consolidation.",
            "Hyperinflation compatible with COPD. No acute process.",
        )
    return (
        "Lungs are clear. Heart size is normal. No pleural effusion or pneumothorax.",
        "No active lung lesion.",
    )
