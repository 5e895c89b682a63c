"""Synthetic 12-lead resting ECGs, written as WFDB records or EDF+ files.

Owns the waveform model and the two writers. A beat is a sum of Gaussian P, Q, R, S and
T waves; limb leads follow Einthoven's and Goldberger's relations from leads I and II,
chest leads show R-wave progression. Sinus rhythm has small beat-to-beat variation;
atrial fibrillation has irregular RR intervals, no P waves and fibrillatory baseline
waves. 500 Hz, 10 s, in mV; deterministic for a seed. The writers use the real
libraries (wfdb.wrsamp, pyedflib) and put what a cart puts in headers: patient name
and MRN, age, sex, acquisition date, and for EDF+ the patient field and an annotation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FS = 500
SECONDS = 10
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

# (P, Q, R, S, T) amplitudes in mV for leads I, II and V1..V6
_LIMB = {"I": (0.08, -0.05, 0.7, -0.1, 0.2), "II": (0.15, -0.08, 1.1, -0.2, 0.3)}
_CHEST = (
    (0.05, 0.0, 0.2, -1.0, -0.1),
    (0.06, 0.0, 0.45, -1.3, 0.35),
    (0.07, -0.03, 0.8, -0.9, 0.45),
    (0.08, -0.05, 1.3, -0.5, 0.45),
    (0.08, -0.07, 1.5, -0.25, 0.35),
    (0.08, -0.07, 1.2, -0.1, 0.3),
)


@dataclass(frozen=True)
class EcgRecording:
    record_name: str
    when: datetime.datetime
    rhythm: str  # "sinus" | "afib"
    heart_rate: int
    patient_name: str  # as written, e.g. "KIM^MINJUN"
    mrn: str
    age: int
    sex: str
    birth_date: datetime.date
    technician: str
    device: str
    institution: str
    seed: int


def _beat(amps: tuple[float, float, float, float, float], qt: float, with_p: bool) -> np.ndarray:
    t = np.arange(-0.3, 0.55, 1 / FS)
    p, q, r, s, tw = amps
    wave = (
        q * np.exp(-(((t + 0.03) / 0.008) ** 2))
        + r * np.exp(-((t / 0.011) ** 2))
        + s * np.exp(-(((t - 0.028) / 0.01) ** 2))
        + tw * np.exp(-(((t - qt * 0.72) / 0.055) ** 2))
    )
    if with_p:
        wave += p * np.exp(-(((t + 0.17) / 0.025) ** 2))
    return wave


def synthesize(rhythm: str, heart_rate: int, seed: int) -> np.ndarray:
    """A (5000, 12) float array in mV: 10 s of a 12-lead ECG at 500 Hz."""
    rng = np.random.default_rng(seed)
    n = FS * SECONDS
    rr_mean = 60.0 / heart_rate
    qt = 0.40 * np.sqrt(rr_mean)  # Bazett: QTc about 400 ms
    beats: list[float] = []
    t = rng.uniform(0.1, rr_mean)
    while t < SECONDS - 0.1:
        beats.append(t)
        if rhythm == "afib":
            t += float(np.clip(rng.normal(rr_mean, rr_mean * 0.25), 0.3, 2.0))
        else:
            t += float(rr_mean * (1 + 0.03 * np.sin(t / 4 * 2 * np.pi)) + rng.normal(0, 0.01))
    with_p = rhythm != "afib"
    templates = {k: _beat(v, qt, with_p) for k, v in _LIMB.items()}
    chest = [_beat(a, qt, with_p) for a in _CHEST]
    off = int(0.3 * FS)
    width = templates["I"].size
    out = np.zeros((n, 12), dtype=np.float64)
    for b in beats:
        start = int(round(b * FS)) - off
        lo, hi = max(0, start), min(n, start + width)
        seg = slice(lo - start, hi - start)
        out[lo:hi, 0] += templates["I"][seg]
        out[lo:hi, 1] += templates["II"][seg]
        for j in range(6):
            out[lo:hi, 6 + j] += chest[j][seg]
    time = np.arange(n) / FS
    wander = 0.05 * np.sin(2 * np.pi * rng.uniform(0.15, 0.35) * time + rng.uniform(0, 6.28))
    out += wander[:, None] * rng.uniform(0.5, 1.0, 12)[None, :]
    if rhythm == "afib":
        f_wave = 0.04 * np.sin(2 * np.pi * 6.0 * time + np.cumsum(rng.normal(0, 0.08, n)))
        out += f_wave[:, None] * np.array([0.3, 0.6, 0, 0, 0, 0, 1.0, 0.8, 0.5, 0.3, 0.2, 0.2])
    out += rng.normal(0, 0.012, out.shape)
    # the cart measures I and II and derives the other limb leads (Einthoven, Goldberger)
    lead_i, lead_ii = out[:, 0].copy(), out[:, 1].copy()
    out[:, 2] = lead_ii - lead_i
    out[:, 3] = -(lead_i + lead_ii) / 2
    out[:, 4] = lead_i - lead_ii / 2
    out[:, 5] = lead_ii - lead_i / 2
    return np.round(out, 3)


def header_comments(rec: EcgRecording) -> list[str]:
    return [
        f"Patient: {rec.patient_name}",
        f"MRN: {rec.mrn}",
        f"Age: {rec.age}",
        f"Sex: {rec.sex}",
        f"Date: {rec.when:%Y-%m-%d}",
        f"Time: {rec.when:%H:%M:%S}",
        f"Institution: {rec.institution}",
        f"Device: {rec.device}",
        f"Technician: {rec.technician}",
        f"Rhythm: {'atrial fibrillation' if rec.rhythm == 'afib' else 'sinus rhythm'}",
        f"Heart rate: {rec.heart_rate} bpm",
    ]


def write_wfdb(directory: Path, rec: EcgRecording) -> list[Path]:
    """Write `<record>.hea` and `<record>.dat` (format 16, 1000 units per mV)."""
    import wfdb

    directory.mkdir(parents=True, exist_ok=True)
    signal = synthesize(rec.rhythm, rec.heart_rate, rec.seed)
    wfdb.wrsamp(
        rec.record_name,
        fs=FS,
        units=["mV"] * 12,
        sig_name=list(LEADS),
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        comments=header_comments(rec),
        base_date=rec.when.date(),
        base_time=rec.when.time(),
        write_dir=str(directory),
    )
    return [directory / f"{rec.record_name}.hea", directory / f"{rec.record_name}.dat"]


def edf_patient_name(dicom_name: str) -> str:
    """EDF+ patient names use underscores for spaces: KIM^MINJUN -> KIM_MINJUN."""
    return dicom_name.replace("^", "_").replace(" ", "_")


def write_edf(path: Path, rec: EcgRecording) -> Path:
    """Write one EDF+ file: 12 signals, patient and recording fields, one annotation."""
    import pyedflib

    path.parent.mkdir(parents=True, exist_ok=True)
    signal = synthesize(rec.rhythm, rec.heart_rate, rec.seed)
    writer = pyedflib.EdfWriter(str(path), 12, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        headers = [
            {
                "label": f"ECG {lead}",
                "dimension": "mV",
                "sample_frequency": FS,
                "physical_min": -8.0,
                "physical_max": 8.0,
                "digital_min": -32768,
                "digital_max": 32767,
                "transducer": "Ag-AgCl electrode",
                "prefilter": "HP:0.05Hz LP:150Hz",
            }
            for lead in LEADS
        ]
        writer.setSignalHeaders(headers)
        writer.setPatientCode(rec.mrn)
        writer.setPatientName(edf_patient_name(rec.patient_name))
        writer.setSex(1 if rec.sex == "M" else 0)
        writer.setBirthdate(rec.birth_date)
        writer.setPatientAdditional(f"age_{rec.age}")
        writer.setStartdatetime(rec.when)
        # the recording field holds 80 characters: admincode, technician and equipment only
        writer.setAdmincode(rec.record_name[:20])
        writer.setTechnician(rec.technician.replace(" ", "_")[:24])
        writer.setEquipment(rec.device.replace(" ", "_")[:16])
        writer.writeSamples([np.ascontiguousarray(signal[:, j]) for j in range(12)])
        writer.writeAnnotation(0.0, -1, f"Resting 12-lead ECG of {rec.patient_name.replace('^', ' ')}")
        rhythm = "Atrial fibrillation" if rec.rhythm == "afib" else "Sinus rhythm"
        writer.writeAnnotation(1.0, -1, f"{rhythm}, {rec.heart_rate} bpm")
    finally:
        writer.close()
    return path
